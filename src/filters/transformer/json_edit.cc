// Applying the transformers' JSON ops to a body without building a DOM of the whole document.
//
// simdjson parses the body (fully validated) into its tape; the ops then work on an overlay:
// a node is either an untouched part of the tape, a value an op produced (a rendered template,
// immutable), or an object/array "opened" because an op edits inside it — its members are
// nodes again, most of them untouched tape. Only the containers on the ops' paths are opened,
// in an arena freed at once. Writing walks the overlay and the untouched tape, so keys keep
// their order and a 1 MiB body with a few edits is one parse and one write (ADR 0008).
#include <charconv>
#include <cstring>
#include <memory>
#include <memory_resource>

#include "api/body_transform.h"
#include "core/json_escape.h"
#include "filters/json_tape.h"
#include "filters/transformer/json_ops.h"

namespace portico::filters {
namespace {

namespace dom = simdjson::dom;
static_assert(api::BufferedBodyTransform::kReadAhead >= simdjson::SIMDJSON_PADDING);
using Tokens = std::vector<std::string>;

struct Node;
struct Member;
using Members = std::pmr::vector<Member>;
using Elements = std::pmr::vector<Node>;

// An object of the tape with some of its members left out (by position, for objects of at most
// 64 members): removing a field from each of thousands of objects opens none of them.
struct Filtered {
  static constexpr std::size_t kMaxMembers = 64;
  dom::element tape;
  std::uint64_t removed = 0;
};

// Whether member `i` is left out (any member of an object larger than Filtered's limit is not).
bool isRemoved(std::uint64_t removed, std::size_t i) {
  return i < Filtered::kMaxMembers && (removed >> i & 1);
}

// 24 bytes: most nodes are members of opened objects, so their size is most of the arena's.
struct Node {
  enum class Kind : std::uint8_t { Tape, Filtered, Object, Array, Value };
  Kind kind = Kind::Value;
  union {
    dom::element tape;         // Tape
    const Filtered* filtered;  // Filtered (never changed: a further removal makes a new one)
    Members* members;          // Object
    Elements* elements;        // Array
    const json* value;         // Value
  };

  Node() : value(nullptr) {}
  static Node ofTape(dom::element e) {
    Node n;
    n.kind = Kind::Tape;
    n.tape = e;
    return n;
  }
  static Node ofFiltered(const Filtered* f) {
    Node n;
    n.kind = Kind::Filtered;
    n.filtered = f;
    return n;
  }
  static Node ofMembers(Members* m) {
    Node n;
    n.kind = Kind::Object;
    n.members = m;
    return n;
  }
  static Node ofElements(Elements* e) {
    Node n;
    n.kind = Kind::Array;
    n.elements = e;
    return n;
  }
  static Node ofValue(const json& v) {
    Node n;
    n.value = &v;
    return n;
  }
};

struct Member {
  std::string_view key;  // into the tape, the ops' config or a rendered value: all outlive the edit
  Node value;
};

std::optional<std::size_t> arrayIndex(std::string_view token, std::size_t size) {
  if (token.empty() || token.size() > 9) return std::nullopt;
  std::size_t n = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (n >= size) return std::nullopt;
  return n;
}

// Memory for the overlay that a worker keeps from body to body: a bump allocator over chunks
// that are reused, so a big body's thousands of opened objects cost neither malloc calls nor
// fresh pages each time. Chunks beyond kKeptScratch are given back after each edit.
class Scratch final : public std::pmr::memory_resource {
 public:
  static constexpr std::size_t kFirstChunk = 64 * 1024;
  static constexpr std::size_t kKeptScratch = 16 * 1024 * 1024;

  // Forgets everything allocated since the last reset.
  void reset() {
    std::size_t kept = 0;
    std::size_t i = 0;
    while (i < chunks_.size() && kept + chunks_[i].size <= kKeptScratch) kept += chunks_[i++].size;
    chunks_.resize(i);
    current_ = 0;
    used_ = 0;
  }

 private:
  struct Chunk {
    std::unique_ptr<std::byte[]> data;
    std::size_t size;
  };

  void* do_allocate(std::size_t bytes, std::size_t align) override {
    while (true) {
      if (current_ < chunks_.size()) {
        const std::size_t start = (used_ + align - 1) & ~(align - 1);
        if (start + bytes <= chunks_[current_].size) {
          used_ = start + bytes;
          return chunks_[current_].data.get() + start;
        }
        if (current_ + 1 < chunks_.size()) {
          ++current_;
          used_ = 0;
          continue;
        }
      }
      const std::size_t last = chunks_.empty() ? kFirstChunk / 2 : chunks_.back().size;
      const std::size_t size = std::max(last * 2, bytes + align);
      chunks_.push_back({std::make_unique_for_overwrite<std::byte[]>(size), size});
      current_ = chunks_.size() - 1;
      used_ = 0;
    }
  }
  void do_deallocate(void*, std::size_t, std::size_t) override {}  // all at once, in reset()
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::vector<Chunk> chunks_;
  std::size_t current_ = 0;
  std::size_t used_ = 0;
};

Scratch& workerScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// One body's edit: the overlay's arena and the values the ops rendered.
class Editor {
 public:
  Editor(const flow::Scope& scope, std::size_t ops) : scope_(scope) { rendered_.reserve(ops); }
  ~Editor() { arena_.reset(); }
  Editor(const Editor&) = delete;
  Editor& operator=(const Editor&) = delete;

  void apply(const JsonOp& op, Node& root) {
    switch (op.kind) {
      case JsonOp::Kind::Remove:
        eraseFrom(root, op.path.tokens, 0);
        break;
      case JsonOp::Kind::Set:
      case JsonOp::Kind::Default: {
        const json* constant = op.value->constant();
        const Node v = Node::ofValue(constant ? *constant : render(*op.value));
        const bool only_if_missing = op.kind == JsonOp::Kind::Default;
        auto set = [&](Node& parent) {
          setChild(parent, op.path.tokens.back(), v, only_if_missing);
        };
        visit(root, op.path.tokens, 0, op.path.tokens.size() - 1, true, set);
        break;
      }
      case JsonOp::Kind::Rename:
      case JsonOp::Kind::Move:
      case JsonOp::Kind::Copy: {
        const std::size_t k = op.from.wildcardEnd();
        auto one = [&](Node& base) {
          Node* src = findFrom(base, op.from.tokens, k);
          if (!src) return;
          const Node v = op.kind == JsonOp::Kind::Copy ? clone(*src) : *src;
          if (op.kind != JsonOp::Kind::Copy) eraseFrom(base, op.from.tokens, k);
          setFrom(base, op.to.tokens, k, v);
        };
        visit(root, op.from.tokens, 0, k, false, one);
        break;
      }
      case JsonOp::Kind::Allow:
        prune(root, op.allow_tree);
        break;
    }
  }

 private:
  Node emptyObject() { return Node::ofMembers(make<Members>()); }
  const json& render(const flow::JsonTemplate& t) {
    return rendered_.emplace_back(t.render(scope_));
  }
  template <class T>
  T* make() {
    return std::pmr::polymorphic_allocator<T>(&arena_).template new_object<T>();
  }

  static bool isObject(const Node& n) {
    switch (n.kind) {
      case Node::Kind::Tape:
        return n.tape.type() == dom::element_type::OBJECT;
      case Node::Kind::Filtered:
      case Node::Kind::Object:
        return true;
      case Node::Kind::Array:
        return false;
      case Node::Kind::Value:
        return n.value->is_object();
    }
    return false;
  }
  static bool isArray(const Node& n) {
    switch (n.kind) {
      case Node::Kind::Tape:
        return n.tape.type() == dom::element_type::ARRAY;
      case Node::Kind::Array:
        return true;
      case Node::Kind::Filtered:
      case Node::Kind::Object:
        return false;
      case Node::Kind::Value:
        return n.value->is_array();
    }
    return false;
  }
  static bool isNull(const Node& n) {
    return (n.kind == Node::Kind::Tape && n.tape.type() == dom::element_type::NULL_VALUE) ||
           (n.kind == Node::Kind::Value && n.value->is_null());
  }

  // Turns a container from the tape or from a rendered value into an editable one, in place.
  void open(Node& n) {
    if (n.kind == Node::Kind::Object || n.kind == Node::Kind::Array) return;
    if (isObject(n)) {
      auto* members = make<Members>();
      if (n.kind == Node::Kind::Tape || n.kind == Node::Kind::Filtered) {
        const bool filtered = n.kind == Node::Kind::Filtered;
        const dom::object obj(filtered ? n.filtered->tape : n.tape);
        const std::uint64_t removed = filtered ? n.filtered->removed : 0;
        members->reserve(obj.size());
        std::size_t i = 0;
        for (const dom::key_value_pair field : obj)
          if (!isRemoved(removed, i++)) members->push_back({field.key, Node::ofTape(field.value)});
      } else {
        members->reserve(n.value->size());
        for (auto it = n.value->begin(); it != n.value->end(); ++it)
          members->push_back({it.key(), Node::ofValue(*it)});
      }
      n = Node::ofMembers(members);
    } else if (isArray(n)) {
      auto* elements = make<Elements>();
      if (n.kind == Node::Kind::Tape) {
        const dom::array arr(n.tape);
        elements->reserve(arr.size());
        for (const dom::element e : arr) elements->push_back(Node::ofTape(e));
      } else {
        elements->reserve(n.value->size());
        for (const json& e : *n.value) elements->push_back(Node::ofValue(e));
      }
      n = Node::ofElements(elements);
    }
  }

  // A copy whose opened containers are new (tape and rendered values are shared: never edited).
  Node clone(const Node& n) {
    Node c = n;
    if (n.kind == Node::Kind::Object) {
      c.members = make<Members>();
      c.members->reserve(n.members->size());
      for (const Member& m : *n.members) c.members->push_back({m.key, clone(m.value)});
    } else if (n.kind == Node::Kind::Array) {
      c.elements = make<Elements>();
      c.elements->reserve(n.elements->size());
      for (const Node& e : *n.elements) c.elements->push_back(clone(e));
    }
    return c;
  }

  // The member named `key` (the last one when the body repeats a key, as a JSON parser keeps
  // the last), in an opened object.
  static Node* member(Node& obj, std::string_view key) {
    for (auto it = obj.members->rbegin(); it != obj.members->rend(); ++it)
      if (it->key == key) return &it->value;
    return nullptr;
  }

  Node* child(Node& parent, const std::string& tok) {
    if (isObject(parent)) {
      open(parent);
      return member(parent, tok);
    }
    if (isArray(parent)) {
      open(parent);
      if (auto idx = arrayIndex(tok, parent.elements->size())) return &(*parent.elements)[*idx];
    }
    return nullptr;
  }

  // Calls `f` on every node that tokens [i, end) lead to from `node`; `*` fans out. With
  // `create`, missing object members on the way are made (never through `*`).
  template <class F>
  void visit(Node& node, const Tokens& t, std::size_t i, std::size_t end, bool create, F& f) {
    if (i == end) {
      f(node);
      return;
    }
    const std::string& tok = t[i];
    if (tok == "*") {
      open(node);
      if (node.kind == Node::Kind::Object)
        for (Member& m : *node.members) visit(m.value, t, i + 1, end, create, f);
      else if (node.kind == Node::Kind::Array)
        for (Node& e : *node.elements) visit(e, t, i + 1, end, create, f);
      return;
    }
    if (create && isNull(node)) node = emptyObject();
    if (isObject(node)) {
      open(node);
      if (Node* c = member(node, tok)) {
        visit(*c, t, i + 1, end, create, f);
      } else if (create) {
        node.members->push_back({tok, emptyObject()});
        visit(node.members->back().value, t, i + 1, end, create, f);
      }
    } else if (isArray(node)) {
      open(node);
      if (auto idx = arrayIndex(tok, node.elements->size()))
        visit((*node.elements)[*idx], t, i + 1, end, create, f);
    }
  }

  void eraseChild(Node& parent, const std::string& tok) {
    if (tok == "*") {
      if (isObject(parent)) parent = emptyObject();
      if (isArray(parent)) parent = Node::ofElements(make<Elements>());
    } else if (removeFromTape(parent, tok)) {
    } else if (isObject(parent)) {
      open(parent);
      std::erase_if(*parent.members, [&](const Member& m) { return m.key == tok; });
    } else if (isArray(parent)) {
      open(parent);
      if (auto idx = arrayIndex(tok, parent.elements->size()))
        parent.elements->erase(parent.elements->begin() + static_cast<long>(*idx));
    }
  }

  // Removes member `key` from an object still on the tape, without opening it; false when the
  // object is not on the tape or too large for that.
  bool removeFromTape(Node& n, std::string_view key) {
    if (n.kind != Node::Kind::Filtered &&
        (n.kind != Node::Kind::Tape || n.tape.type() != dom::element_type::OBJECT))
      return false;
    const bool filtered = n.kind == Node::Kind::Filtered;
    const dom::object obj(filtered ? n.filtered->tape : n.tape);
    if (obj.size() > Filtered::kMaxMembers) return false;
    std::uint64_t removed = filtered ? n.filtered->removed : 0;
    std::size_t i = 0;
    for (const dom::key_value_pair field : obj) {
      if (field.key == key) removed |= std::uint64_t{1} << i;
      ++i;
    }
    if (removed != (filtered ? n.filtered->removed : 0))
      n = Node::ofFiltered(std::pmr::polymorphic_allocator<Filtered>(&arena_).new_object<Filtered>(
          Filtered{filtered ? n.filtered->tape : n.tape, removed}));
    return true;
  }

  void setChild(Node& parent, const std::string& tok, const Node& value, bool only_if_missing) {
    if (tok == "*") {
      open(parent);
      auto each = [&](Node& c) {
        if (!only_if_missing || isNull(c)) c = clone(value);
      };
      if (parent.kind == Node::Kind::Object)
        for (Member& m : *parent.members) each(m.value);
      else if (parent.kind == Node::Kind::Array)
        for (Node& e : *parent.elements) each(e);
      return;
    }
    if (isNull(parent)) parent = emptyObject();
    if (isObject(parent)) {
      open(parent);
      if (Node* existing = member(parent, tok)) {
        if (!only_if_missing) *existing = clone(value);
      } else {
        parent.members->push_back({tok, clone(value)});
      }
    } else if (isArray(parent)) {
      open(parent);
      if (tok == "-") {
        parent.elements->push_back(clone(value));
      } else if (auto idx = arrayIndex(tok, parent.elements->size()); idx && !only_if_missing) {
        (*parent.elements)[*idx] = clone(value);
      }
    }
  }

  // Tokens from `k` on, from `base`: the node there, or null when absent.
  Node* findFrom(Node& base, const Tokens& t, std::size_t k) {
    Node* v = &base;
    for (std::size_t i = k; i < t.size() && v; ++i) v = child(*v, t[i]);
    return v;
  }

  void setFrom(Node& base, const Tokens& t, std::size_t k, const Node& value) {
    auto set = [&](Node& parent) { setChild(parent, t.back(), value, false); };
    visit(base, t, k, t.size() - 1, true, set);
  }

  void eraseFrom(Node& base, const Tokens& t, std::size_t k) {
    auto erase = [&](Node& parent) { eraseChild(parent, t.back()); };
    visit(base, t, k, t.size() - 1, false, erase);
  }

  void prune(Node& n, const AllowTree& tree) {
    if (tree.keep) return;
    auto pick = [&](std::string_view key) -> const AllowTree* {
      auto it = tree.children.find(std::string(key));
      if (it != tree.children.end()) return &it->second;
      it = tree.children.find("*");
      return it == tree.children.end() ? nullptr : &it->second;
    };
    if (isObject(n)) {
      open(n);
      std::erase_if(*n.members, [&](Member& m) {
        const AllowTree* t = pick(m.key);
        if (t) prune(m.value, *t);
        return t == nullptr;
      });
    } else if (isArray(n)) {
      open(n);
      std::size_t i = 0;
      std::erase_if(*n.elements, [&](Node& e) {
        const AllowTree* t = pick(std::to_string(i++));
        if (t) prune(e, *t);
        return t == nullptr;
      });
    }
  }

  const flow::Scope& scope_;
  Scratch& arena_ = workerScratch();
  std::vector<json> rendered_;  // reserved for one per op: never moves
};

// ---- writing ----

// Writes into a string sized ahead (grown by doubling), through a pointer: no per-character
// capacity checks, and string literals written 16 bytes at a time.
class Writer {
 public:
  Writer(std::string& out, std::size_t expected) : out_(out) {
    const std::size_t start = out.size();
    out_.resize(start + expected);
    pos_ = out_.data() + start;
    end_ = out_.data() + out_.size();
  }
  ~Writer() { out_.resize(static_cast<std::size_t>(pos_ - out_.data())); }

  void put(char c) {
    room(1);
    *pos_++ = c;
  }
  void put(std::string_view s) {
    room(s.size());
    std::memcpy(pos_, s.data(), s.size());
    pos_ += s.size();
  }
  void string(std::string_view s) {
    room(jsonStringBound(s.size()));
    pos_ = writeJsonUtf8String(pos_, s);
  }
  // `"s":`
  void key(std::string_view s) {
    string(s);
    put(':');
  }
  template <class Number>
  void number(Number v) {
    room(32);
    pos_ = std::to_chars(pos_, pos_ + 32, v).ptr;
  }

 private:
  void room(std::size_t n) {
    if (static_cast<std::size_t>(end_ - pos_) < n) grow(n);
  }
  [[gnu::noinline]] void grow(std::size_t n) {
    const auto used = static_cast<std::size_t>(pos_ - out_.data());
    out_.resize(std::max(out_.size() * 2, used + n));
    pos_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string& out_;
  char* pos_;
  char* end_;
};

void writeDouble(Writer& w, double d) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  w.put(text);
  // Still a fraction when written back: 2.0 stays 2.0, not the integer 2.
  if (text.find_first_of(".eE") == std::string_view::npos) w.put(".0");
}

// Puts ',' before every item but the first.
class Separator {
 public:
  void before(Writer& w) {
    if (!first_) w.put(',');
    first_ = false;
  }

 private:
  bool first_ = true;
};

void writeTape(Writer& w, const dom::element& e);

// An object of the tape, without the members whose bit is set in `removed`.
void writeTapeObject(Writer& w, const dom::object& obj, std::uint64_t removed) {
  w.put('{');
  Separator sep;
  std::size_t i = 0;
  for (const dom::key_value_pair field : obj) {
    if (isRemoved(removed, i++)) continue;
    sep.before(w);
    w.key(field.key);
    writeTape(w, field.value);
  }
  w.put('}');
}

void writeTape(Writer& w, const dom::element& e) {
  switch (e.type()) {
    case dom::element_type::OBJECT:
      writeTapeObject(w, dom::object(e), 0);
      break;
    case dom::element_type::ARRAY: {
      w.put('[');
      Separator sep;
      const dom::array arr(e);
      for (const dom::element v : arr) {
        sep.before(w);
        writeTape(w, v);
      }
      w.put(']');
      break;
    }
    case dom::element_type::STRING:
      w.string(e.get_string().value_unsafe());
      break;
    case dom::element_type::INT64:
      w.number(e.get_int64().value_unsafe());
      break;
    case dom::element_type::UINT64:
      w.number(e.get_uint64().value_unsafe());
      break;
    case dom::element_type::DOUBLE:
      writeDouble(w, e.get_double().value_unsafe());
      break;
    case dom::element_type::BOOL:
      w.put(e.get_bool().value_unsafe() ? "true" : "false");
      break;
    case dom::element_type::NULL_VALUE:
      w.put("null");
      break;
  }
}

void write(Writer& w, const Node& n) {
  switch (n.kind) {
    case Node::Kind::Tape:
      writeTape(w, n.tape);
      break;
    case Node::Kind::Filtered:
      writeTapeObject(w, dom::object(n.filtered->tape), n.filtered->removed);
      break;
    case Node::Kind::Value:
      w.put(flow::jsonText(*n.value));  // a template may give a header's Latin-1 bytes
      break;
    case Node::Kind::Object: {
      w.put('{');
      Separator sep;
      for (const Member& m : *n.members) {
        sep.before(w);
        w.key(m.key);
        write(w, m.value);
      }
      w.put('}');
      break;
    }
    case Node::Kind::Array: {
      w.put('[');
      Separator sep;
      for (const Node& e : *n.elements) {
        sep.before(w);
        write(w, e);
      }
      w.put(']');
      break;
    }
  }
}

}  // namespace

bool transformJson(const std::vector<JsonOp>& ops, std::string& body, const flow::Scope& scope,
                   std::string& out) {
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: make them part of the allocation
  // (a buffered transform's body usually has them: BufferedBodyTransform::kReadAhead).
  if (body.capacity() < body.size() + simdjson::SIMDJSON_PADDING)
    body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  std::optional<dom::parser> own;
  dom::parser& parser = bodyParser(body.size(), own);
  dom::element root_element;
  if (parser.parse(body.data(), body.size(), false).get(root_element)) return false;
  Node root = Node::ofTape(root_element);
  Editor editor(scope, ops.size());
  for (const JsonOp& op : ops) editor.apply(op, root);
  Writer writer(out, body.size() + 64);
  write(writer, root);
  return true;
}

}  // namespace portico::filters
