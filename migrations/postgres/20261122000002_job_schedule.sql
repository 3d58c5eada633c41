-- The last time slot for which each periodic job was enqueued, so that it runs once per slot
-- across all replicas even after the job itself has finished and left the queue.
CREATE TABLE job_schedule (
    kind TEXT PRIMARY KEY NOT NULL,
    slot BIGINT NOT NULL
);
