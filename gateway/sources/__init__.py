"""Where sightings come from: bleak (a radio), an in-process simulator scene, or a capture file.

Every source is an async iterator of :class:`gateway.core.sighting.Sighting`; the pipeline does
not know which one it reads.
"""
