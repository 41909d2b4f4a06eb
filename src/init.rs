//! Weight initialisation (feature `init`): the book's Gaussian, Xavier and He initialisations, and
//! `torch.nn.init`'s Xavier/Glorot and Kaiming normal and uniform ones, all seedable.
//!
//! Chapter 6 shows why weights must not start equal (every unit would learn the same thing) and
//! why their scale matters: too large and sigmoid activations pile up at 0 and 1, too small and
//! they all collapse to one value. Xavier's scale `1/√n` keeps sigmoid and tanh activations
//! spread over the layers, He's `√(2/n)` does the same for ReLU.
//!
//! ```
//! use ndoptim::init::{Init, Layout};
//! use rand::SeedableRng;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(42);
//! // The book's W1 of a 784-100 layer, He-initialised: std √(2/784).
//! let w = Init::He.sample::<f32, _>(&[784, 100], Layout::InOut, &mut rng)?;
//! assert_eq!(w.shape(), &[784, 100]);
//! # Ok::<(), ndoptim::Error>(())
//! ```

use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::{Error, Scalar, engine::cast};

/// How a weight array's shape gives its fans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The book's `[inputs, outputs]` matrices (`x·W`): fan-in is the first axis.
    InOut,
    /// PyTorch's `[outputs, inputs, kernel…]` (`W·x`, convolution kernels): fan-in is the second
    /// axis times the kernel size, fan-out the first times the kernel size.
    OutIn,
}

/// The numbers of inputs and outputs a weight connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fans {
    /// Inputs per output unit.
    pub fan_in: usize,
    /// Outputs per input unit.
    pub fan_out: usize,
}

impl Fans {
    /// The fans of a weight of `shape` laid out as `layout`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] for fewer than two axes, as `torch.nn.init` refuses.
    pub fn of(shape: &[usize], layout: Layout) -> Result<Fans, Error> {
        if shape.len() < 2 {
            return Err(Error::InvalidShape {
                shape: shape.to_vec(),
                reason: "fan in and fan out need a weight of at least 2 axes",
            });
        }
        Ok(match layout {
            Layout::InOut => Fans {
                fan_in: shape[0],
                fan_out: shape[1..].iter().product(),
            },
            Layout::OutIn => {
                let kernel: usize = shape[2..].iter().product();
                Fans {
                    fan_in: shape[1] * kernel,
                    fan_out: shape[0] * kernel,
                }
            }
        })
    }
}

/// Which fan Kaiming initialisation scales by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanMode {
    /// Keeps the variance of activations in the forward pass (PyTorch's default).
    #[default]
    FanIn,
    /// Keeps the variance of gradients in the backward pass.
    FanOut,
}

/// The activation a layer feeds, for [`gain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Identity (or convolution, or the sigmoid): gain 1.
    Linear,
    /// The logistic sigmoid: gain 1.
    Sigmoid,
    /// tanh: gain 5/3.
    Tanh,
    /// ReLU: gain √2.
    Relu,
    /// Leaky ReLU with this negative slope: gain √(2/(1 + slope²)).
    LeakyRelu(f64),
    /// SELU: gain 3/4.
    Selu,
}

/// `torch.nn.init.calculate_gain`: the factor that keeps activations' variance through `f`.
pub fn gain(f: Nonlinearity) -> f64 {
    match f {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(slope) => (2.0 / (1.0 + slope * slope)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// A distribution of initial weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Gaussian with this standard deviation (the book's `weight_init_std`, 0.01 by default).
    Normal {
        /// The standard deviation.
        std: f64,
    },
    /// The book's Xavier: Gaussian with std `1/√fan_in`.
    Xavier,
    /// The book's He: Gaussian with std `√(2/fan_in)`.
    He,
    /// `torch.nn.init.xavier_normal_`: std `gain·√(2/(fan_in + fan_out))`.
    XavierNormal {
        /// See [`gain`].
        gain: f64,
    },
    /// `torch.nn.init.xavier_uniform_`: uniform on `±gain·√(6/(fan_in + fan_out))`.
    XavierUniform {
        /// See [`gain`].
        gain: f64,
    },
    /// `torch.nn.init.kaiming_normal_`: std `gain/√fan`.
    KaimingNormal {
        /// See [`gain`]; PyTorch's default is that of leaky ReLU with slope 0, √2.
        gain: f64,
        /// The fan to scale by.
        mode: FanMode,
    },
    /// `torch.nn.init.kaiming_uniform_`: uniform on `±gain·√(3/fan)`.
    KaimingUniform {
        /// See [`gain`].
        gain: f64,
        /// The fan to scale by.
        mode: FanMode,
    },
}

impl Init {
    /// The standard deviation of the weights drawn for `fans`.
    pub fn std(&self, fans: Fans) -> f64 {
        let (fi, fo) = (fans.fan_in as f64, fans.fan_out as f64);
        let fan = |mode: &FanMode| if *mode == FanMode::FanIn { fi } else { fo };
        match self {
            Init::Normal { std } => *std,
            Init::Xavier => 1.0 / fi.sqrt(),
            Init::He => (2.0 / fi).sqrt(),
            Init::XavierNormal { gain } | Init::XavierUniform { gain } => {
                gain * (2.0 / (fi + fo)).sqrt()
            }
            Init::KaimingNormal { gain, mode } | Init::KaimingUniform { gain, mode } => {
                gain / fan(mode).sqrt()
            }
        }
    }

    /// An array of `shape` drawn from this distribution; `layout` says how `shape` gives the fans
    /// ([`Init::Normal`] needs none, and takes any shape).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShape`] when the fans are needed and `shape` has fewer than two axes or a
    /// zero fan; [`Error::InvalidHyperparameter`] for a negative or non-finite standard deviation.
    pub fn sample<F: Scalar, R: Rng + ?Sized>(
        &self,
        shape: &[usize],
        layout: Layout,
        rng: &mut R,
    ) -> Result<ArrayD<F>, Error> {
        let std = match self {
            Init::Normal { std } => *std,
            _ => {
                let fans = Fans::of(shape, layout)?;
                if fans.fan_in == 0 || fans.fan_out == 0 {
                    return Err(Error::InvalidShape {
                        shape: shape.to_vec(),
                        reason: "a weight with a zero fan has no scale",
                    });
                }
                self.std(fans)
            }
        };
        crate::check::non_negative("standard deviation", std)?;
        let uniform = matches!(
            self,
            Init::XavierUniform { .. } | Init::KaimingUniform { .. }
        );
        Ok(if uniform && std > 0.0 {
            // A uniform distribution on ±a has standard deviation a/√3.
            let a = std * 3f64.sqrt();
            let u = Uniform::new_inclusive(-a, a).map_err(|_| Error::InvalidHyperparameter {
                name: "uniform bound",
                value: a,
                expected: "a finite number",
            })?;
            ArrayD::from_shape_simple_fn(IxDyn(shape), || cast(u.sample(rng)))
        } else {
            ArrayD::from_shape_simple_fn(IxDyn(shape), || {
                let z: f64 = StandardNormal.sample(rng);
                cast(std * z)
            })
        })
    }
}
