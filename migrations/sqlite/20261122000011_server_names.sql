-- Homeserver names, reserved at order time and never released (a name is never reused).
CREATE TABLE server_names (
    name TEXT PRIMARY KEY NOT NULL,
    customer_id BLOB REFERENCES customers (id) ON DELETE SET NULL,
    reserved_at BIGINT NOT NULL
);
