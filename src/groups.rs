//! Per-key hyperparameters: PyTorch's parameter groups, optax's masks.

use std::fmt;
use std::sync::Arc;

use crate::{Error, check};

/// Hyperparameters for the keys a selector chooses: a learning-rate scale and a weight decay
/// that replace the optimizer's own for those keys.
///
/// The learning rate is a *scale* of the optimizer's, so a schedule, which sets the optimizer's
/// rate, scales every group proportionally (as PyTorch's schedulers scale each group's own rate).
/// When several groups select a key, the first one added wins.
///
/// ```
/// use ndoptim::{AdamW, Group};
/// let opt: AdamW = AdamW::default()
///     .group(Group::matching(|k| k.starts_with('b')).weight_decay(0.0)) // no decay for biases
///     .group(Group::exact("W1").lr_scale(0.1)); // a tenth of the rate for the first layer
/// ```
#[derive(Clone)]
pub struct Group {
    select: Select,
    pub(crate) lr_scale: f64,
    pub(crate) weight_decay: Option<f64>,
    pub(crate) trust_ratio: bool,
}

#[derive(Clone)]
enum Select {
    Exact(String),
    Prefix(String),
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Group {
    fn new(select: Select) -> Group {
        Group {
            select,
            lr_scale: 1.0,
            weight_decay: None,
            trust_ratio: true,
        }
    }

    /// The key `key` alone.
    pub fn exact(key: impl Into<String>) -> Group {
        Group::new(Select::Exact(key.into()))
    }

    /// Every key starting with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Group {
        Group::new(Select::Prefix(prefix.into()))
    }

    /// Every key for which `select` is true.
    pub fn matching(select: impl Fn(&str) -> bool + Send + Sync + 'static) -> Group {
        Group::new(Select::Predicate(Arc::new(select)))
    }

    /// Multiplies the optimizer's learning rate for these keys (default 1), `>= 0`.
    #[must_use]
    pub fn lr_scale(mut self, scale: f64) -> Group {
        self.lr_scale = scale;
        self
    }

    /// Replaces the optimizer's weight decay for these keys, `>= 0` (for optimizers that have one).
    #[must_use]
    pub fn weight_decay(mut self, weight_decay: f64) -> Group {
        self.weight_decay = Some(weight_decay);
        self
    }

    /// Whether per-tensor trust ratios apply to these keys (default `true`): `false` excludes them
    /// from [`Lamb`](crate::Lamb)'s and [`Lars`](crate::Lars)'s trust ratio, as optax's masks and
    /// common practice exclude biases and normalisation parameters. Other optimizers ignore it.
    #[must_use]
    pub fn trust_ratio(mut self, trust_ratio: bool) -> Group {
        self.trust_ratio = trust_ratio;
        self
    }

    /// Whether this group selects `key`.
    pub fn selects(&self, key: &str) -> bool {
        match &self.select {
            Select::Exact(k) => k == key,
            Select::Prefix(p) => key.starts_with(p.as_str()),
            Select::Predicate(f) => f(key),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        check::non_negative("group learning-rate scale", self.lr_scale)?;
        if let Some(wd) = self.weight_decay {
            check::non_negative("weight_decay value", wd)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let select = match &self.select {
            Select::Exact(k) => format!("exact {k:?}"),
            Select::Prefix(p) => format!("prefix {p:?}"),
            Select::Predicate(_) => "predicate".to_string(),
        };
        f.debug_struct("Group")
            .field("select", &select)
            .field("lr_scale", &self.lr_scale)
            .field("weight_decay", &self.weight_decay)
            .field("trust_ratio", &self.trust_ratio)
            .finish()
    }
}
