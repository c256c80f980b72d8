#ifndef BATON_COMMON_SIGNALS_H_
#define BATON_COMMON_SIGNALS_H_

namespace baton {

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts
// afterwards; call first thing in main.
void BlockStopSignals();

// Waits until SIGINT or SIGTERM arrives; returns the signal number.
int WaitForStopSignal();

}  // namespace baton

#endif  // BATON_COMMON_SIGNALS_H_
