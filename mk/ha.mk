# high availability: Redis ACL users, Sentinel, min_replicas (lib/redis.c)
HA_TESTS = tests/integration/redis_acl.sh tests/integration/redis_sentinel.sh \
	tests/integration/shards.sh \
	tests/integration/sentinel_client.sh tests/integration/redis_sentinel_sleep.sh \
	tests/integration/redis_sentinel_wait.sh
TESTS += $(HA_TESTS)
EXTRA_DIST += $(HA_TESTS) tests/integration/ha_producer.py \
	tests/integration/fake_sentinel.py
