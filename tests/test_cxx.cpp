// test_cxx.cpp — C++ allocation through hakmem: new/delete, new[]/delete[],
// sized delete, aligned new (alignas(64), alignas(4096), explicit
// std::align_val_t), nothrow new, the new-handler and std::bad_alloc, and
// std::vector / std::string / std::map churn. Every object must be owned by
// hakmem.
//
// Built linked with libhakmem.a (HK_MODE_LINKED) and plain for LD_PRELOAD
// (HK_MODE_PRELOAD).
#include <dlfcn.h>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "hakmem.h"

#if defined(HK_MODE_PRELOAD)
#define CHECK_MODE "preload"
#elif defined(TEST_AGAINST_GLIBC)
#define CHECK_MODE "glibc"
#else
#define CHECK_MODE "linked"
#endif
#include "check.h" // CHECK, check_summary

using owns_fn = int (*)(const void *);
using stats_fn = void (*)(hak_stats_t *);
static owns_fn owns;
static stats_fn stats_get;

static void init_proof() {
#if defined(HK_MODE_PRELOAD)
  owns = reinterpret_cast<owns_fn>(dlsym(RTLD_DEFAULT, "hak_owns"));
  stats_get = reinterpret_cast<stats_fn>(dlsym(RTLD_DEFAULT, "hak_stats_get"));
  if (!owns || !stats_get) {
    std::fprintf(stderr, "cxx: hak_owns/hak_stats_get not found: hakmem is not loaded\n");
    std::exit(1);
  }
#elif defined(TEST_AGAINST_GLIBC)
  owns = [](const void *p) { return p ? 1 : 0; };
  stats_get = [](hak_stats_t *s) { std::memset(s, 0, sizeof *s); };
#else
  owns = hak_owns;
  stats_get = hak_stats_get;
#endif
}

static uint64_t total_mallocs() {
  hak_stats_t s;
  std::memset(&s, 0, sizeof s);
  stats_get(&s);
  uint64_t t = 0;
  for (int i = 0; i < HAK_STAT_TIERS; i++) t += s.mallocs[i];
  return t;
}

struct Small {
  int a[3];
};
struct alignas(64) Line {
  char c[64];
};
struct alignas(4096) Page {
  char c[100];
};
struct alignas(256) Odd {
  char c[300];
};

static void test_new_delete() {
  for (int i = 0; i < 1000; i++) {
    Small *s = new Small{{i, i + 1, i + 2}};
    CHECK(owns(s), "new Small = %p not owned", (void *)s);
    CHECK(((uintptr_t)s % alignof(Small)) == 0, "new Small misaligned");
    delete s; // sized delete with -fsized-deallocation (default in C++14)
    int *arr = new int[(size_t)i + 1];
    CHECK(owns(arr), "new int[%d] = %p not owned", i + 1, (void *)arr);
    arr[i] = i;
    delete[] arr;
    std::string *str = new std::string(size_t(100 + i), 'x');
    CHECK(owns(str) && owns(str->data()), "std::string storage not owned");
    delete str;
  }
  // big arrays in every tier
  for (size_t n : {size_t(10), size_t(1000), size_t(100000), size_t(3) << 20, size_t(40) << 20}) {
    char *p = new char[n];
    CHECK(owns(p) && owns(p + n - 1), "new char[%zu] = %p not owned", n, (void *)p);
    std::memset(p, 0x42, n);
    delete[] p;
  }
  // explicit sized operator delete
  for (size_t n = 1; n < 5000; n = n * 2 + 3) {
    void *p = ::operator new(n);
    CHECK(owns(p), "operator new(%zu) not owned", n);
    ::operator delete(p, n);
  }
}

static void test_aligned_new() {
  for (int i = 0; i < 200; i++) {
    Line *l = new Line;
    CHECK(((uintptr_t)l & 63) == 0, "new alignas(64) = %p misaligned", (void *)l);
    CHECK(owns(l), "new alignas(64) = %p not owned", (void *)l);
    Page *p = new Page;
    CHECK(((uintptr_t)p & 4095) == 0, "new alignas(4096) = %p misaligned", (void *)p);
    CHECK(owns(p), "new alignas(4096) = %p not owned", (void *)p);
    std::memset(p->c, 1, sizeof p->c);
    Odd *o = new Odd[3];
    CHECK(((uintptr_t)o & 255) == 0, "new alignas(256)[3] = %p misaligned", (void *)o);
    CHECK(owns(o), "new alignas(256)[] not owned");
    Line *la = new Line[17];
    CHECK(((uintptr_t)la & 63) == 0, "new alignas(64)[17] misaligned");
    delete[] la;
    delete[] o;
    delete p;
    delete l;
  }
  for (size_t al = 8; al <= (size_t(1) << 22); al <<= 1) {
    for (size_t n : {size_t(1), al, al + 1, size_t(3000)}) {
      void *p = ::operator new(n, std::align_val_t(al));
      CHECK(((uintptr_t)p & (al - 1)) == 0, "operator new(%zu, align %zu) = %p misaligned", n, al, p);
      CHECK(owns(p), "operator new(%zu, align %zu) not owned", n, al);
      std::memset(p, 3, n);
      if (n & 1)
        ::operator delete(p, std::align_val_t(al));
      else
        ::operator delete(p, n, std::align_val_t(al));
    }
  }
  std::vector<Line> vl(1000);
  CHECK(((uintptr_t)vl.data() & 63) == 0 && owns(vl.data()), "vector<alignas(64)> storage");
}

static int handler_calls;
static void handler() {
  handler_calls++;
  std::set_new_handler(nullptr); // next failure throws
}

static void test_failures() {
  size_t huge = SIZE_MAX / 2;
  void *p = ::operator new(huge, std::nothrow);
  CHECK(p == nullptr, "nothrow new(huge) = %p", p);
  int *a = new (std::nothrow) int[10];
  CHECK(a && owns(a), "nothrow new int[10] not owned");
  delete[] a;
  Line *l = new (std::nothrow) Line;
  CHECK(l && owns(l) && ((uintptr_t)l & 63) == 0, "nothrow aligned new");
  delete l;
  p = ::operator new(huge, std::align_val_t(64), std::nothrow);
  CHECK(p == nullptr, "nothrow aligned new(huge) = %p", p);

  bool threw = false;
  try {
    p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw, "operator new(huge) did not throw std::bad_alloc");

  threw = false;
  handler_calls = 0;
  std::set_new_handler(handler);
  try {
    p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  std::set_new_handler(nullptr);
  CHECK(threw && handler_calls == 1, "new-handler: called %d time(s), threw %d", handler_calls, (int)threw);

  threw = false;
  try {
    std::vector<char> v;
    v.reserve(v.max_size());
  } catch (const std::bad_alloc &) {
    threw = true;
  } catch (const std::length_error &) {
    threw = true;
  }
  CHECK(threw, "vector::reserve(max_size) did not throw");
}

static std::string make_string(uint64_t k) {
  std::string s = "key-" + std::to_string(k * 2654435761u);
  s.append(k % 97, char('a' + k % 26));
  return s;
}

static void churn(int seed, uint64_t *checksum) {
  uint64_t sum = 0;
  std::map<std::string, std::vector<int>> m;
  std::unordered_map<int, std::string> um;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 20000; i++) {
      uint64_t k = uint64_t(seed) * 100003u + uint64_t(i * 7 + round);
      auto &v = m[make_string(k % 5000)];
      v.push_back(i);
      um[int(k % 7000)] = make_string(k);
      if (i % 3 == 0) m.erase(make_string((k + 17) % 5000));
      if (i % 5 == 0) um.erase(int((k + 3) % 7000));
    }
    for (auto &kv : m) {
      sum += kv.first.size() * 31 + kv.second.size();
      if (!kv.second.empty()) {
        CHECK(owns(kv.second.data()), "vector storage not owned");
      }
      if (kv.first.size() > 15) CHECK(owns(kv.first.data()), "string storage not owned");
    }
    for (auto &kv : um) sum += uint64_t(kv.first) ^ kv.second.size();
    std::vector<std::unique_ptr<std::string>> vs;
    for (int i = 0; i < 5000; i++) vs.emplace_back(new std::string(size_t(i % 300 + 1), 'z'));
    for (auto &s : vs) CHECK(owns(s.get()), "unique_ptr<string> not owned");
    vs.clear();
  }
  *checksum = sum;
}

int main() {
  init_proof();
  uint64_t before = total_mallocs();
  test_new_delete();
  test_aligned_new();
  test_failures();
  uint64_t c1 = 0, c2 = 0, c3 = 0, c4 = 0;
  churn(1, &c1);
  std::thread t1(churn, 1, &c2), t2(churn, 2, &c3);
  t1.join();
  t2.join();
  churn(2, &c4);
  CHECK(c1 == c2 && c3 == c4, "container churn results differ between threads: %" PRIu64 " %" PRIu64
        " %" PRIu64 " %" PRIu64, c1, c2, c3, c4);
  uint64_t after = total_mallocs();
#ifndef TEST_AGAINST_GLIBC
  CHECK(after > before + 100000, "statistics: only %" PRIu64 " mallocs counted", after - before);
#endif
  std::fprintf(stderr, "cxx: %" PRIu64 " mallocs\n", after - before);
  return check_summary("cxx");
}
