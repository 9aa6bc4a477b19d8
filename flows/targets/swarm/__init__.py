"""The Docker Swarm target: blue/green across the nodes of a swarm, and a local swarm lab to run it on."""
