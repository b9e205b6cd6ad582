"""SSL objectives, one module each. Every module registers its method with
``@register_method``; the registry imports them all (see benchmark/registry.py).
"""
