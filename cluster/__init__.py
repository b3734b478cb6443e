"""Ray: GPU-owning actors, the scheduler, run tracking and the job-queue client."""
