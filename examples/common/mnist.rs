//! MNIST in the IDX format of its distribution, gzip-compressed or not. Example code.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

/// Images (one row of 784 grey levels in [0, 1] each) and their labels.
pub struct Mnist {
    pub images: Array2<f32>,
    pub labels: Vec<u8>,
}

impl Mnist {
    /// Rows `range` of the set.
    pub fn rows(&self, range: std::ops::Range<usize>) -> Mnist {
        Mnist {
            images: self.images.slice(ndarray::s![range.clone(), ..]).to_owned(),
            labels: self.labels[range].to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }
}

/// What can be wrong with MNIST files.
#[derive(Debug)]
pub enum MnistError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Missing {
        dir: PathBuf,
    },
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
    },
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    CountMismatch {
        images: usize,
        labels: usize,
    },
    TooLarge {
        path: PathBuf,
        dims: Vec<usize>,
    },
    BadLabel {
        path: PathBuf,
        label: u8,
    },
}

impl fmt::Display for MnistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MnistError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            MnistError::Missing { dir } => write!(
                f,
                "{}: no MNIST files (train-images-idx3-ubyte[.gz] and friends, or images-idx3-ubyte[.gz] and labels-idx1-ubyte[.gz])",
                dir.display()
            ),
            MnistError::BadMagic {
                path,
                expected,
                found,
            } => {
                write!(
                    f,
                    "{}: magic number {found}, expected {expected}: not an MNIST file of this kind",
                    path.display()
                )
            }
            MnistError::Truncated {
                path,
                expected,
                found,
            } => {
                write!(
                    f,
                    "{}: truncated or too long: {found} bytes of data, the header announces {expected}",
                    path.display()
                )
            }
            MnistError::CountMismatch { images, labels } => {
                write!(f, "{images} images but {labels} labels")
            }
            MnistError::TooLarge { path, dims } => write!(
                f,
                "{}: the header announces dimensions {dims:?}, more than the {} bytes this loader reads",
                path.display(),
                MAX_BYTES
            ),
            MnistError::BadLabel { path, label } => {
                write!(f, "{}: label {label} is not a digit", path.display())
            }
        }
    }
}

impl std::error::Error for MnistError {}

/// The largest IDX file the loader reads (the whole of MNIST is 55 MB): a header that claims more
/// is an error, not an allocation.
pub const MAX_BYTES: usize = 1 << 30;

/// The contents of a file, gunzipped when it starts with gzip's magic bytes, and at most
/// `MAX_BYTES + 1` of them (one more than allowed, to tell a file that is too long).
fn read(path: &Path) -> Result<Vec<u8>, MnistError> {
    let io = |source| MnistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut raw = Vec::new();
    file.take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        // A small gzip file can inflate to anything: read no more than the limit.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// An IDX file's dimensions and data, checked against `magic`: the header's counts are checked
/// (with checked arithmetic) against the bytes that are there before anything is copied.
pub fn idx(path: &Path, magic: u32) -> Result<(Vec<usize>, Vec<u8>), MnistError> {
    let bytes = read(path)?;
    parse_idx(path, &bytes, magic)
}

/// [`idx`] on bytes already read.
pub fn parse_idx(
    path: &Path,
    bytes: &[u8],
    magic: u32,
) -> Result<(Vec<usize>, Vec<u8>), MnistError> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(
            bytes.get(4 * i..4 * i + 4)?.try_into().ok()?,
        ))
    };
    let truncated = |expected| MnistError::Truncated {
        path: path.to_path_buf(),
        expected,
        found: bytes.len(),
    };
    let found = word(0).ok_or_else(|| truncated(4))?;
    if found != magic {
        return Err(MnistError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    let rank = (magic & 0xff) as usize;
    let dims: Vec<usize> = (1..=rank)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| truncated(4 * (rank + 1)))?;
    let header = 4 * (rank + 1);
    let size = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_BYTES)
        .ok_or_else(|| MnistError::TooLarge {
            path: path.to_path_buf(),
            dims: dims.clone(),
        })?;
    let data = &bytes[header.min(bytes.len())..];
    if data.len() != size {
        return Err(MnistError::Truncated {
            path: path.to_path_buf(),
            expected: size,
            found: data.len(),
        });
    }
    Ok((dims, data.to_vec()))
}

/// Images and labels from a pair of IDX files.
pub fn load_pair(images: &Path, labels: &Path) -> Result<Mnist, MnistError> {
    let (dims, pixels) = idx(images, 2051)?;
    let (ldims, labels_raw) = idx(labels, 2049)?;
    if dims[0] != ldims[0] {
        return Err(MnistError::CountMismatch {
            images: dims[0],
            labels: ldims[0],
        });
    }
    if let Some(&label) = labels_raw.iter().find(|&&l| l > 9) {
        return Err(MnistError::BadLabel {
            path: labels.to_path_buf(),
            label,
        });
    }
    let pixels_per_image = dims[1..].iter().product();
    let images = Array2::from_shape_vec(
        (dims[0], pixels_per_image),
        pixels.into_iter().map(|p| f32::from(p) / 255.0).collect(),
    )
    .map_err(|_| MnistError::CountMismatch {
        images: dims[0],
        labels: ldims[0],
    })?;
    Ok(Mnist {
        images,
        labels: labels_raw,
    })
}

/// The file `name` in `dir`, gzipped or not.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|p| p.exists())
}

/// The training and test sets in `dir`: the full MNIST files (`train-*`, `t10k-*`), or a single
/// set (`images-idx3-ubyte`, `labels-idx1-ubyte`) whose last `test` rows are the test set.
pub fn load(dir: &Path, test: usize) -> Result<(Mnist, Mnist), MnistError> {
    let missing = || MnistError::Missing {
        dir: dir.to_path_buf(),
    };
    if let (Some(a), Some(b), Some(c), Some(d)) = (
        find(dir, "train-images-idx3-ubyte"),
        find(dir, "train-labels-idx1-ubyte"),
        find(dir, "t10k-images-idx3-ubyte"),
        find(dir, "t10k-labels-idx1-ubyte"),
    ) {
        return Ok((load_pair(&a, &b)?, load_pair(&c, &d)?));
    }
    let all = load_pair(
        &find(dir, "images-idx3-ubyte").ok_or_else(missing)?,
        &find(dir, "labels-idx1-ubyte").ok_or_else(missing)?,
    )?;
    let split = all.len().saturating_sub(test);
    Ok((all.rows(0..split), all.rows(split..all.len())))
}

/// The data shipped with the repository: 10,000 real MNIST digits (see data/README.md).
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-10k")
}
