//! What the fake node knows: confirmed transactions in ledger order and the
//! accounts a test registered. It answers the history and account queries;
//! no I/O.
//!
//! Order is (slot, publication order within the slot), as a block orders its
//! transactions. `getSignaturesForAddress` walks it newest first and treats
//! `before` / `until` as agave's blockstore does: an unknown `before` gives an
//! empty list, an unknown `until` is no lower bound.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};

/// A transaction's message version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxVersion {
    Legacy,
    /// Version 0 (address lookup tables): `getTransaction` refuses it to a
    /// client that does not send `maxSupportedTransactionVersion: 0`.
    V0,
}

/// One confirmed transaction, as the node stores it.
#[derive(Debug, Clone)]
pub struct Tx {
    /// Base58 of the 64-byte first signature.
    pub signature: String,
    pub slot: u64,
    /// Block time in seconds, `None` when unknown (the node then returns null).
    pub block_time: Option<i64>,
    /// The TransactionError as JSON (`{"InstructionError":[2,{"Custom":6002}]}`),
    /// `None` for success.
    pub err: Option<Value>,
    /// `meta.logMessages` and the notification's `logs`.
    pub logs: Vec<String>,
    /// Every account the transaction mentions, in message order (signer first).
    /// A `mentions` subscription and `getSignaturesForAddress` match on these.
    pub account_keys: Vec<String>,
    pub version: TxVersion,
    /// `transaction.message.header`: (required signatures, readonly signed,
    /// readonly unsigned).
    pub header: (u8, u8, u8),
    pub recent_blockhash: String,
    /// `transaction.message.instructions` (JSON-encoded, `programIdIndex` form).
    pub instructions: Value,
    /// `meta.innerInstructions`.
    pub inner_instructions: Value,
    pub fee: u64,
    pub compute_units_consumed: u64,
    /// `memo` of `getSignaturesForAddress` (null unless a memo program logged).
    pub memo: Option<String>,
    /// A real recorded `getTransaction` result (encoding json) served as it is
    /// instead of one assembled from the fields above.
    pub recorded: Option<Value>,
}

impl Tx {
    /// A transaction with only logs and the accounts it mentions: enough for a
    /// notification and a backfill, as for hand-written bad input.
    pub fn from_logs(signature: &str, slot: u64, logs: Vec<String>, account_keys: Vec<String>) -> Tx {
        Tx {
            signature: signature.to_owned(),
            slot,
            block_time: None,
            err: None,
            logs,
            account_keys,
            version: TxVersion::Legacy,
            header: (1, 0, 0),
            recent_blockhash: "11111111111111111111111111111111".to_owned(),
            instructions: json!([]),
            inner_instructions: json!([]),
            fee: 5000,
            compute_units_consumed: 0,
            memo: None,
            recorded: None,
        }
    }

    /// Whether the transaction mentions `address`.
    pub fn mentions(&self, address: &str) -> bool {
        self.account_keys.iter().any(|key| key == address)
    }

    /// The same transaction at another slot and block time (a recorded one
    /// replayed into a test's timeline); a recorded result follows.
    pub fn at(mut self, slot: u64, block_time: Option<i64>) -> Tx {
        self.slot = slot;
        self.block_time = block_time;
        if let Some(Value::Object(map)) = &mut self.recorded {
            map.insert("slot".into(), slot.into());
            map.insert("blockTime".into(), block_time.map_or(Value::Null, Value::from));
        }
        self
    }

    /// The `getTransaction` result (encoding json).
    pub fn get_transaction_json(&self) -> Value {
        if let Some(recorded) = &self.recorded {
            return recorded.clone();
        }
        let zeros = vec![0u64; self.account_keys.len()];
        let status = match &self.err {
            None => json!({"Ok": null}),
            Some(err) => json!({"Err": err}),
        };
        let mut message = json!({
            "header": {
                "numRequiredSignatures": self.header.0,
                "numReadonlySignedAccounts": self.header.1,
                "numReadonlyUnsignedAccounts": self.header.2,
            },
            "accountKeys": self.account_keys,
            "recentBlockhash": self.recent_blockhash,
            "instructions": self.instructions,
        });
        let meta = json!({
            "err": self.err,
            "status": status,
            "fee": self.fee,
            "preBalances": zeros,
            "postBalances": zeros,
            "innerInstructions": self.inner_instructions,
            "logMessages": self.logs,
            "preTokenBalances": [],
            "postTokenBalances": [],
            "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
            "computeUnitsConsumed": self.compute_units_consumed,
        });
        let version = match self.version {
            TxVersion::Legacy => json!("legacy"),
            TxVersion::V0 => {
                message["addressTableLookups"] = json!([]);
                json!(0)
            }
        };
        json!({
            "slot": self.slot,
            "blockTime": self.block_time,
            "version": version,
            "meta": meta,
            "transaction": {"signatures": [self.signature], "message": message},
        })
    }

    /// The `getSignaturesForAddress` entry.
    pub fn signature_info_json(&self) -> Value {
        json!({
            "signature": self.signature,
            "slot": self.slot,
            "err": self.err,
            "memo": self.memo,
            "blockTime": self.block_time,
            "confirmationStatus": "confirmed",
        })
    }
}

/// An account a test registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub owner: String,
    pub data: Vec<u8>,
    pub lamports: u64,
    pub executable: bool,
}

/// Ledger order key: (slot, publication sequence).
type Key = (u64, u64);

/// The node's transactions and accounts.
#[derive(Debug)]
pub struct Ledger {
    /// Oldest first. Bounded by `capacity`; when full the oldest transaction is
    /// forgotten, as a node with limited history prunes old slots (a backfill
    /// that reaches past it finds nothing, which tests of unrecoverable gaps
    /// rely on).
    txs: VecDeque<(Key, Tx)>,
    by_signature: HashMap<String, Key>,
    capacity: usize,
    next_seq: u64,
    accounts: HashMap<String, Account>,
    /// Bound on registered accounts; registering more is a test bug (panics).
    max_accounts: usize,
    /// The slot `getSlot` reports before any transaction.
    base_slot: u64,
    /// Signatures the next so many listings that reach them leave out: a
    /// node that notified a transaction's slot but has not indexed it yet.
    unindexed: HashMap<String, u32>,
    /// Listings give a slot's transactions in the reverse of the order they
    /// were published (and streamed) in.
    reverse_within_slot: bool,
}

/// Why a transaction was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    DuplicateSignature(String),
}

impl Ledger {
    pub fn new(capacity: usize, base_slot: u64) -> Ledger {
        Ledger {
            txs: VecDeque::new(),
            by_signature: HashMap::new(),
            capacity: capacity.max(1),
            next_seq: 0,
            accounts: HashMap::new(),
            max_accounts: 10_000,
            base_slot,
            unindexed: HashMap::new(),
            reverse_within_slot: false,
        }
    }

    /// The next `listings` listings that reach `signature` leave it out.
    pub fn hide_from_listings(&mut self, signature: &str, listings: u32) {
        self.unindexed.insert(signature.to_owned(), listings);
    }

    /// Whether a listing reaching `signature` leaves it out now (counting
    /// that listing).
    pub fn skip_in_listing(&mut self, signature: &str) -> bool {
        match self.unindexed.get_mut(signature) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Listings give each slot's transactions in reverse publication order.
    pub fn reverse_within_slot(&mut self, on: bool) {
        self.reverse_within_slot = on;
    }

    /// Stores `tx` at its slot (after the transactions already in that slot).
    pub fn insert(&mut self, tx: Tx) -> Result<(), PublishError> {
        if self.by_signature.contains_key(&tx.signature) {
            return Err(PublishError::DuplicateSignature(tx.signature));
        }
        let key = (tx.slot, self.next_seq);
        self.next_seq += 1;
        let at = self.txs.partition_point(|(k, _)| *k < key);
        self.by_signature.insert(tx.signature.clone(), key);
        self.txs.insert(at, (key, tx));
        while self.txs.len() > self.capacity {
            if let Some((_, old)) = self.txs.pop_front() {
                self.by_signature.remove(&old.signature);
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The highest slot seen (or the base slot).
    pub fn slot(&self) -> u64 {
        self.txs.back().map_or(self.base_slot, |(key, _)| key.0.max(self.base_slot))
    }

    pub fn transaction(&self, signature: &str) -> Option<&Tx> {
        let key = self.by_signature.get(signature)?;
        let at = self.txs.partition_point(|(k, _)| k < key);
        self.txs.get(at).map(|(_, tx)| tx)
    }

    /// Every transaction, oldest first.
    pub fn all(&self) -> Vec<Tx> {
        self.txs.iter().map(|(_, tx)| tx.clone()).collect()
    }

    /// Transactions mentioning `address`, newest first, strictly older than
    /// `before` and strictly newer than `until`, at most `limit`.
    pub fn signatures_for_address(
        &self,
        address: &str,
        before: Option<&str>,
        until: Option<&str>,
        limit: usize,
    ) -> Vec<&Tx> {
        let upper = match before {
            None => None,
            Some(signature) => match self.by_signature.get(signature) {
                Some(key) => Some(*key),
                None => return Vec::new(),
            },
        };
        let lower = until.and_then(|signature| self.by_signature.get(signature).copied());
        let mut found: Vec<&(Key, Tx)> = self
            .txs
            .iter()
            .rev()
            .filter(|(key, _)| upper.is_none_or(|upper| *key < upper))
            .take_while(|(key, _)| lower.is_none_or(|lower| *key > lower))
            .filter(|(_, tx)| tx.mentions(address))
            .take(limit)
            .collect();
        if self.reverse_within_slot {
            found.sort_by_key(|((slot, seq), _)| (std::cmp::Reverse(*slot), *seq));
        }
        found.into_iter().map(|(_, tx)| tx).collect()
    }

    pub fn set_account(&mut self, pubkey: &str, account: Account) {
        assert!(
            self.accounts.len() < self.max_accounts || self.accounts.contains_key(pubkey),
            "more than {} accounts registered on the fake node",
            self.max_accounts
        );
        self.accounts.insert(pubkey.to_owned(), account);
    }

    pub fn account(&self, pubkey: &str) -> Option<&Account> {
        self.accounts.get(pubkey)
    }
}
