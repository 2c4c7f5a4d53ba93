//! The `rps` binary's black-box tests, one binary: each module drives `rps` as a user
//! would (a store, a replayed weather API, MLflow on 127.0.0.1) and reads what it wrote.
//! Each module's tests take their turn ([`testkit::turn`]): modules run one after
//! another, a module's own tests side by side, as when each was a binary of its own.

mod dvc;
mod faults;
mod hosted_mlflow;
mod locations;
mod pipeline;
mod promote;
mod secrets;
mod serve;
mod stations;
mod verify;
