"""The journal as a picture: a timeline page (one lane per resource, states, effect
attempts, retries, waits and deadlocks), rendered offline or served live over SSE."""
