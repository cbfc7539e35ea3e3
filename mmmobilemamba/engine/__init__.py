"""Training-loop components (registered on import of ``mmmobilemamba``)."""
from .merged_groups_constructor import MergedGroupsOptimWrapperConstructor

__all__ = ['MergedGroupsOptimWrapperConstructor']
