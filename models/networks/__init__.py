"""Networks built from shared blocks, found by name through :mod:`.registry`."""

from livedenoise.models.networks.registry import get_network, get_network_builder, list_networks, register_network
from livedenoise.models.networks.unet import UNet

__all__ = ["UNet", "get_network", "get_network_builder", "list_networks", "register_network"]
