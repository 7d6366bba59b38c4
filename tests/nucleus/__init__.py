"""A Greengrass nucleus stand-in for tests: the IPC protocol (eventstream RPC) on a Unix socket.

``codec`` frames messages, ``rpc`` adds the RPC conventions, ``operations`` answers the IPC
operations, ``state`` holds what is served and recorded, ``server`` runs the socket thread,
``standin`` is the public ``NucleusStandIn`` (and the ``python -m`` entry point), ``process``
runs it as a child process, ``fixtures`` offers the pytest fixtures.
"""
