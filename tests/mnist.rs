//! The examples' MNIST loader: the shipped digits, and clear errors for bad files.

#[path = "../examples/common/mnist.rs"]
#[allow(dead_code)]
mod mnist;

use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndoptim-mnist-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

#[test]
fn the_shipped_digits_load_with_their_class_counts() {
    let (train, test) = mnist::load(&mnist::shipped_dir(), 2000).unwrap();
    assert_eq!((train.len(), test.len()), (8000, 2000));
    assert_eq!(train.images.shape(), &[8000, 784]);
    let mut counts = [0usize; 10];
    for &l in train.labels.iter().chain(&test.labels) {
        counts[usize::from(l)] += 1;
    }
    assert_eq!(
        counts,
        [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    assert!(train.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert!(train.images.iter().any(|&p| p == 1.0));
}

#[test]
fn uncompressed_files_load_too() {
    let dir = temp_dir("plain");
    std::fs::write(
        dir.join("images-idx3-ubyte"),
        idx(2051, &[2, 2, 2], &[0, 255, 51, 0, 1, 2, 3, 4]),
    )
    .unwrap();
    std::fs::write(dir.join("labels-idx1-ubyte"), idx(2049, &[2], &[7, 3])).unwrap();
    let (train, test) = mnist::load(&dir, 1).unwrap();
    assert_eq!(
        (train.labels.clone(), test.labels.clone()),
        (vec![7], vec![3])
    );
    assert_eq!(train.images.row(0).to_vec(), vec![0.0, 1.0, 0.2, 0.0]);
}

#[test]
fn bad_files_get_clear_errors() {
    let dir = temp_dir("bad");
    let images = dir.join("images-idx3-ubyte");
    let labels = dir.join("labels-idx1-ubyte");
    let good_images = idx(2051, &[2, 2, 2], &[0; 8]);
    let check = |img: &[u8], lab: &[u8], want: &str| {
        std::fs::write(&images, img).unwrap();
        std::fs::write(&labels, lab).unwrap();
        let err = mnist::load(&dir, 1)
            .err()
            .expect("a bad file is an error")
            .to_string();
        assert!(err.contains(want), "{err}");
    };
    check(
        &idx(2049, &[2, 2, 2], &[0; 8]),
        &idx(2049, &[2], &[1, 2]),
        "magic number 2049, expected 2051",
    );
    check(&good_images[..15], &idx(2049, &[2], &[1, 2]), "truncated");
    check(
        &good_images,
        &idx(2049, &[3], &[1, 2, 3]),
        "2 images but 3 labels",
    );
    check(
        &good_images,
        &idx(2049, &[2], &[1, 12]),
        "label 12 is not a digit",
    );
    check(&good_images, &idx(2049, &[2], &[1]), "truncated");
    let err = mnist::load(&temp_dir("empty"), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no MNIST files"), "{err}");
}
