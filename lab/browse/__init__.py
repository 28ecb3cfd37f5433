"""`lab browse`'s parts: the in-node DevTools driver (driver.py) and the page load's reading (har.py)."""
