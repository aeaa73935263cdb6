"""The backend conformance suite every extraction backend runs, and the plug-in registry."""
