"""The lab's web application (a stand-in until the shop app arrives)."""
