/* placeholder until sukictl lands */
int main(void) { return 0; }
