//! The records that cross stages: what one stage writes and another reads. Every stage
//! imports these and the ports, never another stage; [`crate::pipeline`] is the one
//! place that chains stages.
//!
//! - [`stages`]: each stage's input and output, and which earlier output feeds which
//!   input (the `From` conversions the pipeline, the state machine and the DAG follow);
//! - [`gate_report`]: the promotion gates' verdict (evaluate writes it, promote acts on
//!   it, CI comments it);
//! - [`retrain`]: the retrain requests verification makes and train, evaluate and
//!   promote answer;
//! - [`skill`]: the live scores of a model version per window and horizon;
//! - [`verification`]: what a verification found (the API's metrics and page read it);
//! - [`wire`]: the API's answers (the smoke gate and the release flow read them).

pub mod gate_report;
pub mod retrain;
pub mod skill;
pub mod stages;
pub mod verification;
pub mod wire;
