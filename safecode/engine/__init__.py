"""Talking to the container engine: where it is (endpoint), the hardened `docker run` arguments (args), its CLI
(cli), containers from start to end (container, ending, shipping), start turns, warm pools, images and leftovers.

The CLI calls that the rest of safecode (and its tests) use are named here too: `engine.docker(...)`, `engine.ours()`.
"""

from .cli import LOCAL, docker, image_exists, ours, remove, runtimes

__all__ = ["LOCAL", "docker", "image_exists", "ours", "remove", "runtimes"]
