"""Model Monitor behind monitor.py: data-quality baselines and drift checks of captured traffic."""
