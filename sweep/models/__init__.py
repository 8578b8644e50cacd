"""Models: the ViT family, the RegNetY CNN baseline and their analytic complexity."""

from __future__ import annotations

from sweep.models.cx import Cx
from sweep.models.regnet import RegNet, RegNetSpec
from sweep.models.vit import ViT, ViTSpec

__all__ = ["Cx", "RegNet", "RegNetSpec", "ViT", "ViTSpec", "model_class"]


def model_class(spec: ViTSpec | RegNetSpec) -> type[ViT] | type[RegNet]:
    """The module class a spec builds: both take ``(spec, image_size=, num_classes=)`` and
    have ``complexity(spec, image_size=, num_classes=)``; which parameters take weight
    decay is the recipe's rule (``sweep.engine.recipe.param_groups``), not the model's."""
    return RegNet if isinstance(spec, RegNetSpec) else ViT
