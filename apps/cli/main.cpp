// iotmark command line: parses arguments, calls the library, prints; nothing else.
#include <iostream>

int main() { std::cout << "iotmark\n"; }
