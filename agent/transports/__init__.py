"""Where reports go: one Publisher interface, one module per transport, chosen by ``transport``."""
