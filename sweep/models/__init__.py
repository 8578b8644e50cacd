"""Models: the ViT family and its analytic complexity."""

from sweep.models.cx import Cx
from sweep.models.vit import ViT, ViTSpec

__all__ = ["Cx", "ViT", "ViTSpec"]
