//! The edges of a dirty-log window: the page just past its end is not logged, a range that runs
//! past its end is not one of its ranges, and a window may end exactly where another starts.

use super::*;

const PAGE: u64 = 4096;
/// A 16-page window in the middle of the slot.
const WINDOW: u64 = RAM + MIB;
const WINDOW_LEN: u64 = 16 * PAGE;

fn logged_vm() -> (Vm, FakeBacking, FakeMapper) {
    let (mut vm, backing, mut mapper) = vm_with(ram(4 * MIB, false, false));
    vm.enable_dirty_log(WINDOW, WINDOW_LEN, &mut mapper)
        .unwrap();
    (vm, backing, mapper)
}

#[test]
fn the_page_after_a_window_is_not_logged() {
    let (mut vm, mut backing, mut mapper) = logged_vm();
    let last = WINDOW + WINDOW_LEN - PAGE;
    let after = WINDOW + WINDOW_LEN;
    assert!(vm.dirty().covers(last));
    assert!(!vm.dirty().covers(after));
    // A read just past the window maps the page writable at once; inside, read-only.
    vm.handle_fault(read(after), &mut backing, &mut mapper)
        .unwrap();
    assert!(mapper.translate(after).unwrap().1.writable);
    vm.handle_fault(read(last), &mut backing, &mut mapper)
        .unwrap();
    assert!(!mapper.translate(last).unwrap().1.writable);
    // A write there marks nothing: the window's bitmap has no bit for it.
    vm.handle_fault(write(after + PAGE), &mut backing, &mut mapper)
        .unwrap();
    assert_eq!(
        vm.get_and_clear_dirty_log(WINDOW, WINDOW_LEN, &mut mapper),
        Ok([0; 4])
    );
}

#[test]
fn a_range_running_past_the_window_is_refused() {
    let (mut vm, mut backing, mut mapper) = logged_vm();
    vm.handle_fault(write(WINDOW), &mut backing, &mut mapper)
        .unwrap();
    assert_eq!(
        vm.get_and_clear_dirty_log(WINDOW, WINDOW_LEN + PAGE, &mut mapper),
        Err(MmuError::BadRange)
    );
    assert!(vm.dirty().is_dirty(WINDOW), "nothing taken");
    assert_eq!(
        vm.get_and_clear_dirty_log(WINDOW, WINDOW_LEN, &mut mapper),
        Ok([1, 0, 0, 0])
    );
}

#[test]
fn a_window_may_end_where_another_starts() {
    let (mut vm, _, mut mapper) = logged_vm();
    assert_eq!(
        vm.enable_dirty_log(WINDOW - WINDOW_LEN, WINDOW_LEN, &mut mapper),
        Ok(())
    );
    assert_eq!(
        vm.enable_dirty_log(WINDOW + WINDOW_LEN, WINDOW_LEN, &mut mapper),
        Ok(())
    );
    // ...but not overlap it by one page, from either side.
    for ipa in [WINDOW - WINDOW_LEN + PAGE, WINDOW + WINDOW_LEN - PAGE] {
        assert_eq!(
            vm.enable_dirty_log(ipa, WINDOW_LEN, &mut mapper),
            Err(MmuError::BadRange),
            "{ipa:#x}"
        );
    }
}
