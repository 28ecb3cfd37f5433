"""The Docker backend: the Backend protocol on a Docker engine (backend.py), and the only
package of `lab` that imports the Docker SDK."""
