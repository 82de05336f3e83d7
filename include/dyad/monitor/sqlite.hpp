// A thin RAII layer over SQLite's C API (Debian's libsqlite3): a connection, prepared
// statements with typed binds and columns, and a transaction guard that rolls back unless
// committed. Errors are sql::Error (a std::runtime_error) naming the database file and what was
// being done. Link SQLite::SQLite3 (the CMake target dyad::monitor does).
#pragma once

#include <sqlite3.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace dyad::sql {

class Database;

// An SQLite error: the message names the file; code() is SQLite's extended result code.
class Error : public std::runtime_error {
 public:
  Error(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// How a Database is opened.
enum class Access {
  read_write,  // created when missing
  read_only,   // must exist; never written, never created (SQLITE_OPEN_READONLY)
};

// How long a statement waits for another connection's lock before it fails with "database is
// locked": writers queue rather than fail.
inline constexpr int kBusyTimeoutMs = 10000;

class Statement {
 public:
  Statement(Database& db, std::string_view sql);
  Statement(Statement&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // Binds parameter i (from 1). A NaN double binds NULL (SQL has no NaN).
  Statement& bind(int i, double v) { return check(std::isnan(v) ? sqlite3_bind_null(stmt_, i) : sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, int v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, std::string_view v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Statement& bind_null(int i) { return check(sqlite3_bind_null(stmt_, i)); }
  template <class V>
  Statement& bind(int i, const std::optional<V>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }

  // Steps once: true while there is a row to read.
  bool step();
  // Runs a statement that returns no rows, then resets it for the next binds.
  void run() {
    while (step()) {
    }
    reset();
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  bool is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  // A NULL reads as NaN.
  double real(int c) const { return is_null(c) ? std::nan("") : sqlite3_column_double(stmt_, c); }
  std::int64_t integer(int c) const { return sqlite3_column_int64(stmt_, c); }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }

 private:
  Statement& check(int rc);
  Database& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Database {
 public:
  // Opens the database file: with Access::read_write creating it if need be, with
  // Access::read_only only an existing file, which nothing through this connection writes.
  // The path is always a file name, never an SQLite URI or ":memory:".
  explicit Database(const std::filesystem::path& path, Access access = Access::read_write) : path_(path) {
    if (path.empty()) throw Error("the database file name is empty", SQLITE_CANTOPEN);
    if (access == Access::read_only) {
      std::error_code ec;
      const auto type = std::filesystem::status(path, ec).type();
      if (type == std::filesystem::file_type::not_found) throw Error(path.string() + ": no such database file", SQLITE_CANTOPEN);
      if (type == std::filesystem::file_type::directory)
        throw Error(path.string() + ": is a directory, not a database file", SQLITE_CANTOPEN);
    }
    const int flags =
        SQLITE_OPEN_NOMUTEX | (access == Access::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(file_name(path).c_str(), &db, flags, nullptr);
    db_.reset(db);
    if (rc != SQLITE_OK) fail(rc, "opening it");
    // Before any statement: every lock this connection meets is waited for, not failed on.
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    sqlite3_extended_result_codes(db, 1);
  }

  // An empty database in memory (for comparisons); `name` is for messages.
  static Database in_memory(std::string name) { return Database(std::move(name), 0); }

  // The name SQLite is given for `path`. Debian's libsqlite3 is built with SQLITE_USE_URI, so
  // it would read a name that starts with "file:" as a URI (file:x.db?mode=memory: nothing on
  // disk) and ":memory:" as no file at all; "./" in front keeps a relative path a file name.
  static std::string file_name(const std::filesystem::path& path) {
    return path.is_relative() ? "./" + path.string() : path.string();
  }

  const std::filesystem::path& path() const { return path_; }
  sqlite3* handle() { return db_.get(); }

  // Runs one or more statements without results.
  void exec(const char* sql, std::string_view what) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
      const std::string m = message ? message : sqlite3_errstr(rc);
      sqlite3_free(message);
      throw Error(path_.string() + ": " + m + " (while " + std::string(what) + ")", sqlite3_extended_errcode(db_.get()));
    }
  }
  // The single integer a query returns (e.g. PRAGMA user_version).
  std::int64_t scalar(std::string_view sql) {
    Statement s(*this, sql);
    if (!s.step()) throw Error(path_.string() + ": no result from " + std::string(sql), SQLITE_ERROR);
    return s.integer(0);
  }

  [[noreturn]] void fail(int rc, std::string_view what) const {
    const char* m = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
    throw Error(path_.string() + ": " + (m ? m : "SQLite error") + " (while " + std::string(what) + ")",
                db_ ? sqlite3_extended_errcode(db_.get()) : rc);
  }

 private:
  Database(std::string name, int) : path_(std::move(name)) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(db);
    if (rc != SQLITE_OK) fail(rc, "opening it in memory");
    sqlite3_extended_result_codes(db, 1);
  }

  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::filesystem::path path_;
  std::unique_ptr<sqlite3, Closer> db_;
};

inline Statement::Statement(Database& db, std::string_view sql) : db_(db) {
  const int rc = sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) db.fail(rc, "preparing: " + std::string(sql.substr(0, 60)));
}
inline Statement& Statement::check(int rc) {
  if (rc != SQLITE_OK) db_.fail(rc, "binding a value");
  return *this;
}
inline bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const std::string sql = sqlite3_sql(stmt_) ? sqlite3_sql(stmt_) : "";
  sqlite3_reset(stmt_);
  db_.fail(rc, "running: " + sql.substr(0, 60));
}

// BEGIN IMMEDIATE on construction (the write lock at once, so two writers queue rather than
// fail half-way); ROLLBACK on destruction unless commit() ran.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE", "starting a transaction"); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    db_.exec("COMMIT", "committing");
    open_ = false;
  }

 private:
  Database& db_;
  bool open_ = true;
};

}  // namespace dyad::sql
