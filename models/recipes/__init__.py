"""Torch-side recipes, one per method family; found through the catalogue's import strings.

Use :func:`recipe_for` (from a validated method config) or :func:`get_recipe` (by name, defaults).
"""

from livedenoise.models.recipes.base import Recipe, StepOutput, TrainingWindow, get_recipe, recipe_for

__all__ = ["Recipe", "StepOutput", "TrainingWindow", "get_recipe", "recipe_for"]
