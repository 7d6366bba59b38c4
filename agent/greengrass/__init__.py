"""Discovery of a Greengrass v2 core device: its configuration, identity and deployed recipes."""
