//! The page's way in: plain exports of the WebAssembly module, no bindings generator. The page
//! asks for a buffer (`buffer`), writes a JSON request into it, calls `answer` and reads the
//! answer from `output` (its length is what `answer` returns).

use std::cell::RefCell;

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A buffer of `len` bytes for the next request; its address in the module's memory.
#[unsafe(no_mangle)]
pub extern "C" fn buffer(len: usize) -> *mut u8 {
    INPUT.with_borrow_mut(|input| {
        input.clear();
        input.resize(len, 0);
        input.as_mut_ptr()
    })
}

/// Answers the request in the buffer; the answer's length in bytes.
#[unsafe(no_mangle)]
pub extern "C" fn answer() -> usize {
    let answer = INPUT.with_borrow(|input| match std::str::from_utf8(input) {
        Ok(request) => crate::answer(request),
        Err(_) => r#"{"error": "a request that is not UTF-8"}"#.to_string(),
    });
    OUTPUT.with_borrow_mut(|output| {
        *output = answer;
        output.len()
    })
}

/// The address of the last answer.
#[unsafe(no_mangle)]
pub extern "C" fn output() -> *const u8 {
    OUTPUT.with_borrow(|output| output.as_ptr())
}
