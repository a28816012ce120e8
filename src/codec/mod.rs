//! Byte formats, without I/O: the pump.fun and PumpSwap events that come
//! in, the `Bar` archive that goes to Kafka and WebSocket clients, JSON.
//!
//! - [`borsh`]: the field cursor and the errors every event decoder shares.
//! - [`trade`]: pump.fun `TradeEvent`, every layout.
//! - [`amm`]: PumpSwap `BuyEvent` / `SellEvent`, `CreatePoolEvent`, `Pool`.
//! - [`coin`]: pump.fun `CreateEvent`, `CompleteEvent`, the migration.
//! - [`event`]: the two programs, and which decoder a record goes to.
//! - [`idl`]: every field of every event, as JSON (tools and tests).
//! - [`quote`]: quote mints and their decimals.
//! - [`bar`]: the archived `Bar`; [`json`]: its JSON form.

pub mod amm;
pub mod bar;
pub mod borsh;
pub mod coin;
pub mod event;
pub mod idl;
pub mod json;
pub mod quote;
pub mod trade;
