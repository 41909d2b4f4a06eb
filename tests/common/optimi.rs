//! torch-optimi's optimizers (`optimi.*`) as a reference file's `hyperparameters` describe them,
//! for both replays: native f32/f64 files and bfloat16 files.

use ndoptim::{
    AdamW, Adan, Engine, HasFullyDecoupledWeightDecay, Lion, RAdam, Ranger, Rounding, Rule, Scalar,
    Sgd, StableAdamW,
};

use super::{Hyper, opt};

/// The options every optimi optimizer shares: its learning rate, weight decay (coupled,
/// `decouple_wd`, or fully decoupled with `decouple_lr` and `max_lr`) and `kahan_sum`, which
/// applies to low-precision parameters only (the rounding it returns).
pub struct Shared {
    pub lr: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    pub max_lr: Option<f64>,
    pub rounding: Rounding,
}

impl Shared {
    /// Takes the shared options; `decoupled` is the class's own default (`AdamW`'s is fixed).
    pub fn take(h: &mut Hyper, decoupled: bool, weight_decay: f64) -> Result<Self, String> {
        let lr = h.take("lr")?.ok_or("optimi needs lr")?;
        let weight_decay = h.take("weight_decay")?.unwrap_or(weight_decay);
        let decoupled = h.flag("decouple_wd")?.unwrap_or(decoupled);
        // optimi resolves max_lr to lr when decouple_lr is set without it.
        let max_lr = match (h.flag("decouple_lr")?, h.take("max_lr")?) {
            (Some(true), m) => Some(m.unwrap_or(lr)),
            (_, _) => None,
        };
        let rounding = match h.flag_or_null("kahan_sum")? {
            Some(false) => Rounding::Nearest,
            _ => Rounding::Kahan,
        };
        Ok(Self {
            lr,
            weight_decay,
            decoupled,
            max_lr,
            rounding,
        })
    }
}

impl Shared {
    /// `o` with the shared learning rate and weight decay (fully decoupled with a `max_lr`).
    fn decayed<R, F>(&self, o: Engine<R, F>) -> Engine<R, F>
    where
        R: Rule<F> + HasFullyDecoupledWeightDecay,
        F: Scalar,
    {
        o.lr(self.lr)
            .weight_decay(self.weight_decay)
            .fully_decoupled_weight_decay(self.max_lr)
    }
}

/// `optimi.SGD`.
pub fn sgd<F: Scalar>(h: &mut Hyper) -> Result<(Sgd<F>, Rounding), String> {
    let s = Shared::take(h, false, 0.0)?;
    let o = s
        .decayed(Sgd::<F>::default())
        .decoupled_weight_decay(s.decoupled || s.max_lr.is_some());
    let o = opt(h.take("momentum")?, o, Sgd::momentum);
    let o = opt(h.flag("dampening")?, o, Sgd::ema_momentum);
    let o = opt(h.flag("torch_init")?, o, Sgd::torch_init);
    Ok((o, s.rounding))
}

/// `optimi.Adam` and `optimi.AdamW` (`decoupled`: AdamW's fixed decoupled weight decay).
pub fn adam<F: Scalar>(h: &mut Hyper, decoupled: bool) -> Result<(AdamW<F>, Rounding), String> {
    let s = Shared::take(h, decoupled, if decoupled { 0.01 } else { 0.0 })?;
    let o = s
        .decayed(AdamW::<F>::optimi())
        .decoupled_weight_decay(s.decoupled || s.max_lr.is_some());
    let o = opt(h.numbers("betas")?, o, |o, (b1, b2)| o.betas(b1, b2));
    let o = opt(h.take("eps")?, o, AdamW::eps);
    Ok((o, s.rounding))
}

/// `optimi.RAdam` (`decoupled`: the class's default, Ranger's `decouple_wd=True`).
pub fn radam<F: Scalar>(h: &mut Hyper, decoupled: bool) -> Result<(RAdam<F>, Rounding), String> {
    let s = Shared::take(h, decoupled, 0.0)?;
    let o = s
        .decayed(RAdam::<F>::optimi())
        .decoupled_weight_decay(s.decoupled || s.max_lr.is_some());
    let o = opt(h.numbers("betas")?, o, |o, (b1, b2)| o.betas(b1, b2));
    let o = opt(h.take("eps")?, o, RAdam::eps);
    Ok((o, s.rounding))
}

/// `optimi.Lion` (always decoupled weight decay).
pub fn lion<F: Scalar>(h: &mut Hyper) -> Result<(Lion<F>, Rounding), String> {
    let s = Shared::take(h, true, 0.0)?;
    let o = s.decayed(Lion::<F>::optimi());
    let o = opt(h.numbers("betas")?, o, |o, (b1, b2)| o.betas(b1, b2));
    Ok((o, s.rounding))
}

/// `optimi.Ranger` (decoupled weight decay by default).
pub fn ranger<F: Scalar>(h: &mut Hyper) -> Result<(Ranger<F>, Rounding), String> {
    let s = Shared::take(h, true, 0.0)?;
    let o = s
        .decayed(Ranger::<F>::default())
        .decoupled_weight_decay(s.decoupled || s.max_lr.is_some());
    let o = opt(h.numbers("betas")?, o, |o, (b1, b2)| o.betas(b1, b2));
    let o = opt(h.take("eps")?, o, Ranger::eps);
    let o = opt(h.take("k")?, o, |o, k| o.k(k as u64));
    Ok((opt(h.take("alpha")?, o, Ranger::alpha), s.rounding))
}

/// `optimi.StableAdamW` (always decoupled weight decay).
pub fn stable_adamw<F: Scalar>(h: &mut Hyper) -> Result<(StableAdamW<F>, Rounding), String> {
    let s = Shared::take(h, true, 0.01)?;
    let o = s.decayed(StableAdamW::<F>::default());
    let o = opt(h.numbers("betas")?, o, |o, (b1, b2)| o.betas(b1, b2));
    Ok((opt(h.take("eps")?, o, StableAdamW::eps), s.rounding))
}

/// `optimi.Adan` (its weight decay divided out after the step, or `adam_wd`).
pub fn adan<F: Scalar>(h: &mut Hyper) -> Result<(Adan<F>, Rounding), String> {
    let s = Shared::take(h, false, 0.02)?;
    let o = Adan::<F>::optimi()
        .lr(s.lr)
        .weight_decay(s.weight_decay)
        .fully_decoupled_weight_decay(s.max_lr);
    let o = match h.numbers_n::<3>("betas")? {
        Some([b1, b2, b3]) => o.b1(b1).b2(b2).b3(b3),
        None => o,
    };
    let o = opt(h.take("eps")?, o, Adan::eps);
    Ok((opt(h.flag("adam_wd")?, o, Adan::adam_wd), s.rounding))
}
