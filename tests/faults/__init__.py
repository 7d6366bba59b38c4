"""Faults of the peers the agent depends on, each against the real peer: the nucleus socket
dropped mid-publish, the token exchange service failing or hanging, S3 answering slowly, and
the wall clock jumping. (Broker restarts and a full spool disk are tested in tests/transports.)"""
