//! The system tests, one binary: the deployment as its real engines run it. Each module
//! drives one: Airflow (`airflow`), the translated state machine (`statemachine`), the
//! stage functions under the Lambda emulator (`lambda`), the template and IAM
//! (`infra`), the GitHub workflows (`cicd`), Prometheus, Alertmanager and Grafana
//! (`monitoring`), a browser (`browser`) and the API's schema under fuzzing
//! (`schemathesis`). Their Python and Node checkers are beside them, in `system/checkers/`; the
//! `rps` binary they drive is [`testkit::rps`]'s.
//! Modules take their turn ([`testkit::turn`]), as when each was a binary of its own.

mod airflow;
mod browser;
mod cicd;
mod infra;
mod lambda;
mod monitoring;
mod schemathesis;
mod statemachine;
