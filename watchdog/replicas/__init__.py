"""Two replicas that never double-act: a leader lease in Redis (lease, store), the journal handed from
one leader to the next (handoff), and the loop that ties them to recovery (leadership)."""
