//! Homeservers: the regions they run in, their names, and their life after payment
//! (provisioners, the lifecycle jobs, the supervisor of the processes).

pub mod backups;
pub mod health;
pub mod lifecycle;
pub mod local;
pub mod manage;
pub mod names;
pub mod provisioner;
pub mod regions;
pub mod settings;
pub mod supervisor;
pub mod synapse;
pub mod synapse_config;
