"""The package version, read once from the installed metadata."""

from importlib import metadata

try:
    version_string = metadata.version('nova_lite')
except metadata.PackageNotFoundError:  # running from a bare checkout
    version_string = '0.0.0'
