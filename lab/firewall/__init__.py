"""The firewall part's pure logic: rule sets compiled from intent, the path a flow takes,
and which rule decides it. No Docker here: lab.firewall.live confirms it on a real engine."""
