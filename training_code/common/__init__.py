"""Code every workload shares: dataset specs, input errors, the quality gate, registration, and the
Azure scoring adapter."""
