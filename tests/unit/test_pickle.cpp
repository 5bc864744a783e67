// The restricted unpickler on hand-assembled opcode streams.
#include <gtest/gtest.h>

#include "model/io/pickle.h"
#include "model/io/torch_checkpoint.h"
#include "test_util.h"

using namespace hallo::io;
using hallo::test::expect_error;
using namespace std::string_literals;

namespace {

UnpickleHooks torch_hooks() {
  UnpickleHooks h;
  h.find_class = [](const std::string& m, const std::string& n) { return torch_find_class(m, n, "t.pkl"); };
  h.call = [](const PyRef& f, const PyRef& a) { return torch_call(f, a, "t.pkl"); };
  return h;
}

Unpickled load(const std::string& bytes, UnpickleHooks h = torch_hooks()) {
  size_t pos = 0;
  return unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &pos, h, "t.pkl");
}

std::string S(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

}  // namespace

TEST(Unpickler, Protocol0TextOpcodes) {
  // (dp0\nS'a'\nI12\nsS'b'\nF2.5\nsS'c'\nI01\ns.  => {'a': 12, 'b': 2.5, 'c': True}
  auto r = load("(dp0\nS'a'\np1\nI12\nsS'b'\nF2.5\nsS'c'\nI01\ns.");
  ASSERT_EQ(r.root->kind, PyKind::Dict);
  ASSERT_EQ(r.root->dict.size(), 3u);
  EXPECT_EQ(r.root->dict[0].first->s, "a");
  EXPECT_EQ(r.root->dict[0].second->i, 12);
  EXPECT_DOUBLE_EQ(r.root->dict[1].second->f, 2.5);
  EXPECT_EQ(r.root->dict[2].second->kind, PyKind::Bool);
  EXPECT_TRUE(r.root->dict[2].second->b);
}

TEST(Unpickler, BinaryIntsLongsAndFloats) {
  // PROTO 2, MARK, BININT1 7, BININT2 0x1234, BININT -2, LONG1(2 bytes 0xff7f=-129? no: 0x7fff), BINFLOAT 1.0, TUPLE, STOP
  std::string p = S({0x80, 2, '(', 'K', 7, 'M', 0x34, 0x12, 'J', 0xfe, 0xff, 0xff, 0xff, 0x8a, 2, 0x7f, 0xff, 'G',
                     0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 't', '.'});
  auto r = load(p);
  ASSERT_EQ(r.root->kind, PyKind::Tuple);
  ASSERT_EQ(r.root->items.size(), 5u);
  EXPECT_EQ(r.root->items[0]->i, 7);
  EXPECT_EQ(r.root->items[1]->i, 0x1234);
  EXPECT_EQ(r.root->items[2]->i, -2);
  EXPECT_EQ(r.root->items[3]->i, -129);  // 0xff7f little-endian, sign-extended
  EXPECT_DOUBLE_EQ(r.root->items[4]->f, 1.0);
}

TEST(Unpickler, MemoSharesObjects) {
  // ]q\x00(K\x01e h\x00 \x86 .  => (lst, lst) with lst == [1]
  auto r = load(S({0x80, 2, ']', 'q', 0, '(', 'K', 1, 'e', 'h', 0, 0x86, '.'}));
  ASSERT_EQ(r.root->items.size(), 2u);
  EXPECT_EQ(r.root->items[0].get(), r.root->items[1].get());
  EXPECT_EQ(r.root->items[0]->items.at(0)->i, 1);
}

TEST(Unpickler, SelfReferencingListDoesNotHang) {
  // ]q\x00 h\x00 a .  => l = []; l.append(l)
  auto r = load(S({0x80, 2, ']', 'q', 0, 'h', 0, 'a', '.'}));
  EXPECT_EQ(r.root->items.at(0).get(), r.root.get());
  EXPECT_FALSE(r.root->repr().empty());
}

TEST(Unpickler, OrderedDictViaReduceAndSetitems) {
  // c collections\nOrderedDict\n ) R ( X\x01\x00\x00\x00k K\x05 u .
  auto r = load("\x80\x02" "ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00kK\x05u."s);
  ASSERT_EQ(r.root->kind, PyKind::Dict);
  EXPECT_EQ(r.root->dict.at(0).first->s, "k");
  EXPECT_EQ(r.root->dict.at(0).second->i, 5);
}

TEST(Unpickler, ForbiddenGlobalsAreRefusedByName) {
  expect_error([] { load("cos\nsystem\n(S'echo hi'\ntR."); }, {"t.pkl", "forbidden global 'os.system'"});
  expect_error([] { load("cposix\nsystem\n(S'echo hi'\ntR."); }, {"'posix.system' (os.system)"});
  expect_error([] { load("c__builtin__\neval\n(S'1'\ntR."); }, {"'__builtin__.eval' (builtins.eval)"});
  expect_error([] { load("\x80\x04\x8c\x08" "builtins\x8c\x04" "exec\x93."); }, {"'builtins.exec'"});
  expect_error([] { load("csubprocess\nPopen\n."); }, {"subprocess.Popen"});
}

TEST(Unpickler, TorchGlobalsCannotBeAbused) {
  // torch.Tensor is an accepted token but calling it is not a rebuild function.
  expect_error([] { load("ctorch\nTensor\n)R."); }, {"torch.Tensor", "cannot be called"});
  // _rebuild_tensor_v2 without a storage.
  expect_error([] { load("ctorch._utils\n_rebuild_tensor_v2\n(I1\nI0\n(t(tI00\nNtR."); }, {"without a storage"});
}

TEST(Unpickler, MalformedStreamsGiveErrorsNotCrashes) {
  expect_error([] { load(""); }, {"empty"});
  expect_error([] { load("\x80\x02K"); }, {"truncated"});
  expect_error([] { load("\x80\x02X\xff\xff\xff\x7f"); }, {"truncated"});
  expect_error([] { load("a."); }, {"stack underflow"});
  expect_error([] { load("\x80\x02h\x05."); }, {"memo key 5"});
  expect_error([] { load("\xff"); }, {"unknown opcode 0xff"});
  expect_error([] { load("\x80\x09."); }, {"protocol 9"});
  expect_error([] { load("\x80\x02K\x01K\x02K\x03u."); }, {"MARK expected"});
  expect_error([] { load("\x80\x02Q."); }, {"persistent id"});
  expect_error([] { load("\x80\x02\x97."); }, {"out-of-band"});
}

TEST(Unpickler, CodecsEncodeBytes) {
  // _codecs.encode('\xe9A', 'latin1') -> b'\xe9A' (protocol-2 bytes)
  auto r = load("c_codecs\nencode\n(X\x03\x00\x00\x00\xc3\xa9" "AX\x06\x00\x00\x00latin1tR."s);
  ASSERT_EQ(r.root->kind, PyKind::Bytes);
  EXPECT_EQ(r.root->s, std::string("\xe9" "A"));
}
