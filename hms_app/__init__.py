"""HMS, a hospital management system."""
