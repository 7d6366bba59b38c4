"""The device beneath Greengrass: its clock (:mod:`agent.system.clock`); rules only, no I/O
beyond the kernel's clock state."""
