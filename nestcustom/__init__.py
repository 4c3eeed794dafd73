"""nestcustom: declarative image customisation for NestOS and NewStart hosts."""

__version__ = "0.1.0"
