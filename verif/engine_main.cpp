// The GEMM/layer engine's simulator: plays whole jobs through a Verilated design at
// Verilator's own speed (verif/engine.py builds it and writes the job).
//
// Generic over the design's valid/ready streams: engine_ports.h, generated from the
// manifest, binds each stream's ports (ENGINE_IN/ENGINE_OUT tables). A job file
// (text, one directive a line) says what to do:
//
//   in  NAME WIDTH BEATS FILE [ORDER]         play BEATS beats of WIDTH bits from FILE
//                                             (little-endian 32-bit words, ceil(WIDTH/32)
//                                             a beat) in order, or in the ORDER:
//       index INDEX_FILE N                    the N table rows the uint32 indices name
//       runs RUNS_FILE N                      N runs, uint32 pairs (first, count): rows
//                                             first .. first + count - 1, run after run
//   out NAME WIDTH BEATS FILE                 capture BEATS beats into FILE (same words)
//   before NAME                               play input stream NAME in full first, at
//                                             full rate, while the others wait (a code
//                                             table loaded before the job); its cycles
//                                             are not counted
//   stall NAME THRESHOLD STATE                seeded stalls of one stream (below)
//   edges NAME FILE                           write the edge (as `cycles` counts them) at
//                                             which each beat of stream NAME moved, one
//                                             little-endian uint64 a beat, into FILE
//   limit CYCLES                              give up after this many cycles
//   reset CYCLES                              cycles with rst high first (default 2)
//   tail CYCLES                               cycles run after the last beat (default 3)
//   vcd PATH                                  record a VCD (a --trace build only); the
//                                             rest of the line is the path
//   progress CYCLES                           a progress line on stdout this often
//   raw CYCLES                                instead: the bare reference loop
//
// Timing (the same as verif/gemm_tb.py's cocotb loop, so cycle counts agree): after
// reset, cycle c drives inputs, lets them settle (clk low, eval), samples every
// handshake (valid && ready), then clocks the edge (clk high, eval): a beat with
// valid and ready high transfers at that edge. `cycles` counts edges from cycle 0 to
// the edge at which the last expected output beat is taken.
//
// Stalls: each stalled stream has a splitmix64 generator (STATE, 64 bits) drawn once
// every cycle; a draw whose top 24 bits are below THRESHOLD is a stall. An input
// stream stalls by not offering its next beat this cycle (a beat once offered stays
// until taken, as the stream protocol requires); an output stream by lowering ready.
// verif/engine.py StallPattern is the same generator in Python.
//
// Output on stdout: `progress ...` lines, then one `done cycles=N seconds=S` line.
// Exit: 0 done; 2 bad job file; 3 cycle limit reached; 4 beat counts disagree;
// 5 a file could not be written (the VCD or a captured stream; full disk, file size
// limit, ...): stdout then ends with `write_failed errno=N file=PATH`. On 3 and 4 the
// VCD is closed whole up to the failure (the waveform of a failing job is wanted); on
// 5 it is incomplete and the caller removes it.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "verilated.h"
#include "engine_ports.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

namespace {

struct Port {           // one stream's ports in the Verilated model
    const char* name;
    int width;
    CData* valid;
    CData* ready;
    void* payload;      // CData/SData/IData/QData, or a VlWide's words
};

int words_of(int width) { return (width + 31) / 32; }

void put_payload(const Port& p, const uint32_t* w) {
    if (p.width <= 8) *static_cast<CData*>(p.payload) = static_cast<CData>(w[0]);
    else if (p.width <= 16) *static_cast<SData*>(p.payload) = static_cast<SData>(w[0]);
    else if (p.width <= 32) *static_cast<IData*>(p.payload) = w[0];
    else if (p.width <= 64)
        *static_cast<QData*>(p.payload) = w[0] | (static_cast<uint64_t>(w[1]) << 32);
    else std::memcpy(p.payload, w, 4 * words_of(p.width));
}

void get_payload(const Port& p, uint32_t* w) {
    if (p.width <= 8) w[0] = *static_cast<CData*>(p.payload);
    else if (p.width <= 16) w[0] = *static_cast<SData*>(p.payload);
    else if (p.width <= 32) w[0] = *static_cast<IData*>(p.payload);
    else if (p.width <= 64) {
        uint64_t q = *static_cast<QData*>(p.payload);
        w[0] = static_cast<uint32_t>(q);
        w[1] = static_cast<uint32_t>(q >> 32);
    } else std::memcpy(w, p.payload, 4 * words_of(p.width));
}

struct Stall {          // splitmix64; see the header comment
    uint32_t threshold = 0;
    uint64_t state = 0;
    bool next() {
        state += 0x9E3779B97F4A7C15ULL;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        return (z >> 40) < threshold;
    }
};

struct InStream {
    Port port;
    std::vector<uint32_t> table;     // beats, words_of(width) words each
    std::vector<uint32_t> index;     // beat order (empty: the table in order) ...
    std::vector<uint32_t> runs;      // ... or runs of rows: (first, count) pairs
    uint64_t beats = 0;              // to play
    uint64_t sent = 0;
    bool offered = false;
    bool before = false;             // played in full before the job (see `before`)
    Stall stall;
    std::string edges_file;          // `edges`: where the edges of its beats go
    std::vector<uint64_t> edges;
    size_t next_run = 0;             // the runs' cursor
    uint64_t run_row = 0, run_left = 0;
    // The beat to offer after `sent` beats were taken (called once per beat, in order).
    const uint32_t* next_beat() {
        uint64_t row = sent;
        if (!runs.empty()) {
            while (run_left == 0) {  // the job's check: the runs hold `beats` rows in all
                run_row = runs[2 * next_run];
                run_left = runs[2 * next_run + 1];
                next_run++;
            }
            row = run_row++;
            run_left--;
        } else if (!index.empty()) {
            row = index[sent];
        }
        return table.data() + row * words_of(port.width);
    }
};

struct OutStream {
    Port port;
    std::string file;
    uint64_t beats = 0;              // expected
    std::vector<uint32_t> words;
    uint64_t taken = 0;
    Stall stall;
    bool ready = true;
    std::string edges_file;          // `edges`: where the edges of its beats go
    std::vector<uint64_t> edges;
};

// While a VCD is open: closes it, returns 0 or the errno of a failed write.
std::function<int()> close_waveform;
std::string waveform_path;

void report_write_failure(const std::string& path, int error) {
    std::printf("write_failed errno=%d file=%s\n", error, path.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "cannot write %s: %s\n", path.c_str(), std::strerror(error));
}

[[noreturn]] void fail(int code, const std::string& message) {
    if (close_waveform) {   // keep what was recorded up to the failure, whole
        if (int error = close_waveform()) report_write_failure(waveform_path, error);
        close_waveform = nullptr;
    }
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(code);
}

[[noreturn]] void write_failed(const std::string& path, int error) {
    // No close_waveform(): the VCD is incomplete either way (the caller removes it).
    report_write_failure(path, error);
    std::exit(5);
}

// The whole buffer to fd, retrying short writes; 0 or the errno of the failure.
int write_all(int fd, const char* data, size_t len) {
    while (len) {
        ssize_t got = ::write(fd, data, len);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return got < 0 ? errno : EIO;
        data += got;
        len -= static_cast<size_t>(got);
    }
    return 0;
}

int write_file(const std::string& path, const void* data, size_t len) {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return errno;
    int error = write_all(fd, static_cast<const char*>(data), len);
    if (::close(fd) != 0 && !error) error = errno;
    return error;
}

#if VM_TRACE
// The VCD's file. Verilator's own VerilatedVcdFile hands a failed write() to vl_fatal,
// whose flush callbacks take the trace's mutex that the failing dump already holds: the
// simulator then waits on itself forever (a full disk hung it). This one keeps the
// first error and drops what follows; the loop checks error after every dump.
class CheckedVcdFile final : public VerilatedVcdFile {
    int m_fd = -1;

public:
    int error = 0;
    bool open(const std::string& name) override {
        m_fd = ::open(name.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0666);
        if (m_fd < 0 && !error) error = errno;
        return m_fd >= 0;
    }
    void close() override {
        if (m_fd >= 0 && ::close(m_fd) != 0 && !error) error = errno;
        m_fd = -1;
    }
    ssize_t write(const char* bufp, ssize_t len) override {
        if (!error) error = write_all(m_fd, bufp, static_cast<size_t>(len));
        return len;   // never an error for Verilator (see above)
    }
};
#endif

std::vector<uint32_t> read_words(const std::string& path, uint64_t count) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail(2, "cannot open " + path);
    std::vector<uint32_t> words(count);
    f.read(reinterpret_cast<char*>(words.data()), static_cast<std::streamsize>(4 * count));
    if (static_cast<uint64_t>(f.gcount()) != 4 * count)
        fail(2, path + " holds fewer than the " + std::to_string(count) + " words the job says");
    return words;
}

struct Job {
    std::vector<InStream> ins;
    std::vector<OutStream> outs;
    uint64_t limit = 0, reset = 2, tail = 3, progress = 0, raw = 0;
    std::string vcd;
};

const Port* find_port(const Port* table, int n, const std::string& name) {
    for (int i = 0; i < n; i++)
        if (name == table[i].name) return &table[i];
    return nullptr;
}

Job read_job(const char* path, const Port* ins, const Port* outs) {
    std::ifstream f(path);
    if (!f) fail(2, std::string("cannot open the job file ") + path);
    Job job;
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream words(line);
        std::string key, name;
        if (!(words >> key) || key[0] == '#') continue;
        if (key == "in" || key == "out") {
            int width = 0;
            uint64_t beats = 0;
            std::string file;
            words >> name >> width >> beats >> file;
            if (words.fail()) fail(2, "bad job line: " + line);
            const Port* port = find_port(key == "in" ? ins : outs,
                                         key == "in" ? ENGINE_N_IN : ENGINE_N_OUT, name);
            if (!port) fail(2, "the design has no " + key + "put stream " + name);
            if (port->width != width)
                fail(2, "stream " + name + " is " + std::to_string(port->width) +
                        " bits wide in this build, the job says " + std::to_string(width));
            if (key == "in") {
                InStream s{*port};
                s.table = read_words(file, beats * words_of(width));
                s.beats = beats;
                std::string order, order_file;
                uint64_t n = 0;
                if (words >> order) {
                    words >> order_file >> n;
                    if (words.fail()) fail(2, "bad job line: " + line);
                    if (order == "index") {
                        s.index = read_words(order_file, n);
                        for (uint32_t i : s.index)
                            if (i >= beats) fail(2, "index " + std::to_string(i) + " in " +
                                                        order_file + " is past the table's " +
                                                        std::to_string(beats) + " beats");
                        s.beats = n;
                    } else if (order == "runs") {
                        s.runs = read_words(order_file, 2 * n);
                        s.beats = 0;
                        for (uint64_t r = 0; r < n; r++) {
                            uint64_t first = s.runs[2 * r], count = s.runs[2 * r + 1];
                            if (first + count > beats)
                                fail(2, "run " + std::to_string(r) + " in " + order_file +
                                            " goes past the table's " + std::to_string(beats) +
                                            " beats");
                            s.beats += count;
                        }
                        if (s.beats == 0) s.runs.clear();
                    } else {
                        fail(2, "unknown beat order " + order + " (index or runs)");
                    }
                }
                job.ins.push_back(std::move(s));
            } else {
                OutStream s{*port};
                s.file = file;
                s.beats = beats;
                s.words.reserve(beats * words_of(width));
                job.outs.push_back(std::move(s));
            }
            continue;
        } else if (key == "stall") {
            uint32_t threshold = 0;
            uint64_t state = 0;
            words >> name >> threshold >> state;
            Stall* stall = nullptr;
            for (auto& s : job.ins) if (name == s.port.name) stall = &s.stall;
            for (auto& s : job.outs) if (name == s.port.name) stall = &s.stall;
            if (!stall) fail(2, "stall for stream " + name + ", which the job does not play");
            stall->threshold = threshold;
            stall->state = state;
        } else if (key == "edges") {
            std::string file;
            words >> name;
            std::getline(words >> std::ws, file);   // may hold spaces
            std::string* target = nullptr;
            for (auto& s : job.ins) if (name == s.port.name) target = &s.edges_file;
            for (auto& s : job.outs) if (name == s.port.name) target = &s.edges_file;
            if (!target) fail(2, "edges for stream " + name + ", which the job does not play");
            if (file.empty()) fail(2, "bad job line: " + line);
            *target = file;
        } else if (key == "before") {
            words >> name;
            InStream* stream = nullptr;
            for (auto& s : job.ins) if (name == s.port.name) stream = &s;
            if (!stream) fail(2, "before: the job plays no input stream " + name);
            stream->before = true;
        } else if (key == "limit") words >> job.limit;
        else if (key == "reset") words >> job.reset;
        else if (key == "tail") words >> job.tail;
        else if (key == "progress") words >> job.progress;
        else if (key == "raw") words >> job.raw;
        else if (key == "vcd") std::getline(words >> std::ws, job.vcd);   // may hold spaces
        else fail(2, "unknown job directive " + key);
        if (words.fail()) fail(2, "bad job line: " + line);
    }
    return job;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) fail(2, "usage: engine JOB_FILE");
    // Past a file size limit (RLIMIT_FSIZE), write() fails with EFBIG instead of the
    // default SIGXFSZ killing the simulator: the failure is then reported as any other.
    std::signal(SIGXFSZ, SIG_IGN);
    auto context = std::make_unique<VerilatedContext>();
    context->debug(0);
    context->randReset(0);          // registers start at 0, as under cocotb
    // An empty instance name keeps the design's module as the VCD's top scope.
    auto top = std::make_unique<ENGINE_TOP>(context.get(), "");
    Port in_ports[ENGINE_N_IN > 0 ? ENGINE_N_IN : 1];
    Port out_ports[ENGINE_N_OUT > 0 ? ENGINE_N_OUT : 1];
    ENGINE_BIND(top, in_ports, out_ports);
    Job job = read_job(argv[1], in_ports, out_ports);

#if VM_TRACE
    // Locals: std::exit() runs no destructor that could flush into a failed file.
    CheckedVcdFile vcd_file;
    std::unique_ptr<VerilatedVcdC> vcd;
    if (!job.vcd.empty()) {
        context->traceEverOn(true);
        vcd = std::make_unique<VerilatedVcdC>(&vcd_file);
        top->trace(vcd.get(), 99);
        vcd->open(job.vcd.c_str());
        if (!vcd->isOpen() || vcd_file.error)
            write_failed(job.vcd, vcd_file.error ? vcd_file.error : EIO);
        waveform_path = job.vcd;
        close_waveform = [&] {
            vcd->close();
            return vcd_file.error;
        };
    }
    auto dump = [&](uint64_t t) {
        if (!vcd) return;
        vcd->dump(t);
        if (VL_UNLIKELY(vcd_file.error)) write_failed(job.vcd, vcd_file.error);
    };
#else
    if (!job.vcd.empty()) fail(2, "this build has no tracing: build with waves for a VCD");
    auto dump = [](uint64_t) {};
#endif
    uint64_t time = 0;   // ns: a 10 ns clock, as under cocotb
    auto tick = [&]() {
        top->ENGINE_CLK = 0;
        top->eval();
        dump(time);
        top->ENGINE_CLK = 1;
        top->eval();
        dump(time + 5);
        time += 10;
    };

    if (job.raw) {
        // The reference: random payloads, valid and ready high every cycle.
        for (const Port& p : in_ports) *p.valid = 1;
        for (const Port& p : out_ports) *p.ready = 1;
        top->ENGINE_RST = 0;
        int most = 1;
        for (const Port& p : in_ports) most = std::max(most, words_of(p.width));
        std::vector<uint32_t> random_words(most);
        uint64_t x = 0x2545F4914F6CDD1DULL;
        auto start = std::chrono::steady_clock::now();
        for (uint64_t c = 0; c < job.raw; c++) {
            for (const Port& p : in_ports) {
                for (auto& w : random_words) {
                    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                    w = static_cast<uint32_t>(x);
                }
                // top bits past the width are masked by Verilator on the next eval
                put_payload(p, random_words.data());
            }
            top->ENGINE_CLK = 0;
            top->eval();
            top->ENGINE_CLK = 1;
            top->eval();
        }
        std::printf("done cycles=%" PRIu64 " seconds=%.6f\n", job.raw, seconds_since(start));
        top->final();
        return 0;
    }

    for (auto& s : job.ins) *s.port.valid = 0;
    for (auto& s : job.outs) *s.port.ready = 1;
    top->ENGINE_RST = 1;
    for (uint64_t c = 0; c < job.reset; c++) tick();
    top->ENGINE_RST = 0;

    // The `before` streams, in full and at full rate, the others idle and every output
    // ready; the job's cycles start after the edge that takes their last beat.
    std::vector<char> before_fire(job.ins.size());
    for (uint64_t loaded = 0;; loaded++) {
        bool pending = false;
        for (auto& s : job.ins) {
            if (s.before && !s.offered && s.sent < s.beats) {
                put_payload(s.port, s.next_beat());
                *s.port.valid = 1;
                s.offered = true;
            }
            pending |= s.before && s.offered;
        }
        if (!pending) break;
        if (job.limit && loaded >= job.limit)
            fail(3, "the design did not take the streams played before the job within the "
                    "limit of " + std::to_string(job.limit) + " cycles");
        top->ENGINE_CLK = 0;
        top->eval();
        dump(time);
        for (size_t i = 0; i < job.ins.size(); i++)
            before_fire[i] = job.ins[i].before && job.ins[i].offered && *job.ins[i].port.ready;
        for (auto& s : job.outs)
            if (*s.port.valid)
                fail(4, std::string("output stream ") + s.port.name + " gave a beat before "
                        "the job started");
        top->ENGINE_CLK = 1;
        top->eval();
        dump(time + 5);
        time += 10;
        for (size_t i = 0; i < job.ins.size(); i++) {
            if (before_fire[i]) {
                job.ins[i].sent++;
                job.ins[i].offered = false;
                *job.ins[i].port.valid = 0;
            }
        }
    }

    uint64_t expected = 0, taken = 0;
    for (auto& s : job.outs) expected += s.beats;
    uint64_t cycles = 0, next_note = job.progress;
    std::vector<uint32_t> scratch;
    for (auto& s : job.outs) scratch.resize(std::max<size_t>(scratch.size(),
                                                             words_of(s.port.width)));
    std::vector<char> in_fire(job.ins.size()), out_fire(job.outs.size());
    auto start = std::chrono::steady_clock::now();
    bool finished = expected == 0;
    while (!finished) {
        // Drive this cycle: offer the next beat (unless stalled), set ready.
        for (auto& s : job.ins) {
            bool stall = s.stall.threshold && s.stall.next();
            if (!s.offered && s.sent < s.beats && !stall) {
                put_payload(s.port, s.next_beat());
                *s.port.valid = 1;
                s.offered = true;
            }
        }
        for (auto& s : job.outs) {
            s.ready = !(s.stall.threshold && s.stall.next());
            *s.port.ready = s.ready;
        }
        top->ENGINE_CLK = 0;
        top->eval();
        dump(time);
        // Sample the handshakes before the edge.
        for (size_t i = 0; i < job.ins.size(); i++)
            in_fire[i] = job.ins[i].offered && *job.ins[i].port.ready;
        for (size_t i = 0; i < job.outs.size(); i++) {
            OutStream& s = job.outs[i];
            out_fire[i] = s.ready && *s.port.valid;
            if (out_fire[i]) {
                if (!s.edges_file.empty()) s.edges.push_back(cycles + 1);   // this edge
                s.taken++;
                taken++;
                if (s.taken > s.beats) {
                    fail(4, std::string("output stream ") + s.port.name + " gave more than the " +
                                std::to_string(s.beats) + " beats the job expects, at cycle " +
                                std::to_string(cycles));
                }
                size_t n = s.words.size();
                s.words.resize(n + words_of(s.port.width));
                get_payload(s.port, s.words.data() + n);
            }
        }
        top->ENGINE_CLK = 1;
        top->eval();
        dump(time + 5);
        time += 10;
        cycles++;
        for (size_t i = 0; i < job.ins.size(); i++) {
            InStream& s = job.ins[i];
            if (in_fire[i]) {
                if (!s.edges_file.empty()) s.edges.push_back(cycles);
                s.sent++;
                s.offered = false;
                *s.port.valid = 0;
            }
        }
        if (taken == expected) break;
        if (job.limit && cycles >= job.limit) {
            std::string where;
            for (auto& s : job.ins)
                where += std::string(" ") + s.port.name + " " + std::to_string(s.sent) + "/" +
                         std::to_string(s.beats);
            for (auto& s : job.outs)
                where += std::string(" ") + s.port.name + " " + std::to_string(s.taken) + "/" +
                         std::to_string(s.beats);
            fail(3, "the design did not finish the job within the limit of " +
                        std::to_string(job.limit) + " cycles (beats:" + where + "); it stalled");
        }
        if (job.progress && cycles >= next_note) {
            next_note += job.progress;
            uint64_t sent = 0, beats = 0;
            for (auto& s : job.ins) { sent += s.sent; beats += s.beats; }
            std::printf("progress cycles=%" PRIu64 " in=%" PRIu64 "/%" PRIu64 " out=%" PRIu64
                        "/%" PRIu64 "\n", cycles, sent, beats, taken, expected);
            std::fflush(stdout);
        }
    }
    double seconds = seconds_since(start);
    // A few more cycles, inputs idle and outputs ready: a waveform shows the last beat
    // whole, and a design that gives more beats than the job expects is caught.
    for (auto& s : job.ins) *s.port.valid = 0;
    for (auto& s : job.outs) *s.port.ready = 1;
    for (uint64_t c = 0; c < job.tail; c++) {
        top->ENGINE_CLK = 0;
        top->eval();
        dump(time);
        for (auto& s : job.outs)
            if (*s.port.valid)
                fail(4, std::string("output stream ") + s.port.name + " gave more than the " +
                            std::to_string(s.beats) + " beats the job expects");
        top->ENGINE_CLK = 1;
        top->eval();
        dump(time + 5);
        time += 10;
    }
#if VM_TRACE
    if (vcd) {
        close_waveform = nullptr;
        vcd->close();   // the last buffer goes out here: a full disk may show only now
        if (vcd_file.error) write_failed(job.vcd, vcd_file.error);
    }
#endif
    for (auto& s : job.ins)
        if (s.sent != s.beats)
            fail(4, "every output beat came back after only " + std::to_string(s.sent) + " of " +
                        std::to_string(s.beats) + " " + s.port.name + " beats were taken");
    for (auto& s : job.outs)
        if (int error = write_file(s.file, s.words.data(), 4 * s.words.size()))
            write_failed(s.file, error);
    auto write_edges = [](const std::string& file, const std::vector<uint64_t>& edges) {
        if (file.empty()) return;
        if (int error = write_file(file, edges.data(), 8 * edges.size()))
            write_failed(file, error);
    };
    for (auto& s : job.ins) write_edges(s.edges_file, s.edges);
    for (auto& s : job.outs) write_edges(s.edges_file, s.edges);
    top->final();
    std::printf("done cycles=%" PRIu64 " seconds=%.6f\n", cycles, seconds);
    return 0;
}
