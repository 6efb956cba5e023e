Feature: Writers at the same time
  As the operator of a busy shop
  I want orders that arrive together never to over-allocate a product or lose an allocation
  So that the stock records stay true however many customers buy at once

  The interleavings here are forced through the store's hook, not left to the scheduler:
  "2 writers load LAMP before any of them commits" holds the first two units of work
  between loading the product and committing it until both have loaded.

  @book
  Scenario Outline: Two writers load the same product before either commits, <retries> retries
    Given a batch "batch1" of 100 "LAMP" in the warehouse
    And the product "LAMP" is at version 1
    And conflicting commits are retried up to <retries> times
    And 2 writers load "LAMP" before any of them commits
    When 2 writers send 2 orders of 10 "LAMP" at the same time
    Then <allocated> orders were allocated
    And <conflicts> orders were told of a concurrent update
    And there were <attempts> commit attempts
    And batch "batch1" holds <allocated> orders
    And batch "batch1" has <left> available
    And the product "LAMP" is at version <version>

    Examples: without retry exactly one commit wins; with one retry the loser starts again and both allocate
      | retries | allocated | conflicts | attempts | left | version |
      | 0       | 1         | 1         | 2        | 90   | 2       |
      | 1       | 2         | 0         | 3        | 80   | 3       |

  @book
  Scenario: The writer that loses the race is told its commit conflicted
    Given a batch "batch1" of 100 "LAMP" in the warehouse
    And conflicting commits are retried up to 0 times
    And 2 writers load "LAMP" before any of them commits
    When 2 writers send 2 orders of 10 "LAMP" at the same time
    Then it fails with a concurrent update
    And it fails with exhausted retries
    And no mail was sent

  @beyond
  Scenario: A writer that keeps conflicting gives up after its retry budget and publishes nothing
    Given a batch "b1" of 0 "LAMP" in the warehouse
    And conflicting commits are retried up to 3 times
    And another writer changes "LAMP" before every commit
    When I allocate order "o1" of 1 "LAMP"
    Then it fails with exhausted retries
    And it fails with a concurrent update
    And there were 4 commit attempts
    And batch "b1" holds 0 orders
    And the bus handled no events
    And no mail was sent

  @beyond
  Scenario Outline: A hot sku: <writers> writers send <orders> orders of 1 against a stock of <stock>
    Given a batch "hot-batch" of <stock> "HOT-SKU" in the warehouse
    And conflicting commits are retried without limit
    When <writers> writers send <orders> orders of 1 "HOT-SKU" at the same time
    Then <stock> orders were allocated
    And <out> orders were told it is out of stock
    And 0 orders were told of a concurrent update
    And batch "hot-batch" has 0 available
    And batch "hot-batch" holds <stock> orders
    And no order is held twice
    And the product "HOT-SKU" is at version <stock>
    And the bus handled <out> OutOfStock events
    And every event was handled once by each of its handlers
    And <out> mails were sent to "stock@made.com"
    And each mail is about a different order that was told it is out of stock

    Examples:
      | writers | orders | stock | out |
      | 8       | 1000   | 500   | 500 |
      | 2       | 100    | 50    | 50  |
      | 16      | 300    | 299   | 1   |
