// scheduler/tsan.hpp: WEFT_TSAN is 1 when building under ThreadSanitizer.
//
// TSan does not model standalone atomic fences (reliability rule 2), so code that relies on a
// seq_cst fence switches to an equivalent read-modify-write under TSan; the comment at each such
// spot argues both variants.
//
// What the TSan build does not check: the internals of the moodycamel injection queue. Inside each
// call into it TSan looks away and is given only the queue's per-item push-to-pop edge
// (injector.hpp argues why, and docs/architecture.md "ThreadSanitizer and fences"). Everything
// else in weft is checked as written (fences aside, as above).
#pragma once

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#ifndef WEFT_TSAN
#define WEFT_TSAN 0
#endif
