// Guest boots are CPU-heavy (TCG, and nested TCG+KVM); two at once on a small
// CI machine only slow each other down past their timeouts.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
