"""The Kubernetes backend: labs as namespaces of Deployments on a cluster with Multus.

The only package that imports the official `kubernetes` Python client (an optional
extra: pip install 'lab[kubernetes]'). lab.backends.open_backend() imports it
only when the kubernetes backend is asked for, so the tool runs without it.
"""
