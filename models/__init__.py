"""livedenoise.models: the torch side (synthetic data, networks, samplers, recipes, trainer, export).

Import the submodules you need (``livedenoise.models.pipeline``, ``.trainer``, ``.export``, ...); this
package module stays empty so that light entry points (the job worker's argument checks) do not pay
for importing torch.
"""
